/**
 * Storage, opened outside Nest: the event store and the balance read model the configuration
 * names. The service (main.ts), the CLI, the tests and the benchmarks all open it here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Pool as PgPool } from 'pg';
import {
  type EventStore,
  type KurrentDbEventStore,
  type PostgresEventStore,
  SqliteEventStore,
  createEventStore,
} from '@metering/event-store';
import { SparsePositionsStore } from '@metering/event-store/testing/sparse-positions-store';
import type { AppConfig } from '../config';
import type { BalanceReadModel } from '../projection/balance-read-model';
import { PostgresBalanceReadModel } from '../projection/postgres-balance-read-model';
import { SqliteBalanceReadModel } from '../projection/sqlite-balance-read-model';
import { READ_MODEL_FILE, moveReadModelsOutOfStore, openReadModelDb } from './read-model-file';

/** What the service runs on: the event store and the balance read model. */
export interface Storage {
  store: EventStore;
  readModel: BalanceReadModel;
}

/**
 * Opens the configured store and read model, ready to use (PostgreSQL migrations applied).
 *  - sqlite: the events in DATA_DIR/metering.db, the read models in DATA_DIR/read-model.db (a read
 *    model an earlier version kept in metering.db is moved there once);
 *  - postgres: the store and the read model in the same database and schema (DATABASE_URL, PG_SCHEMA),
 *    on one pool;
 *  - kurrentdb: the store in KurrentDB (KURRENTDB_URL); the read model in PostgreSQL when DATABASE_URL
 *    is set, else in SQLite at DATA_DIR/read-model.db.
 * A failure names the variable and the host it tried, and closes whatever was already opened.
 */
export async function openStorage(config: AppConfig): Promise<Storage> {
  /** Host(s), port and (PostgreSQL) database of a connection string, never its credentials. */
  const hostOf = (url: string): string => {
    const m = /^[a-z+]+:\/\/(?:[^@/?]*@)?([^/?]*)(\/[^?]*)?/i.exec(url);
    if (!m || !m[1]) return '(host not given)';
    const pg = /^postgres/i.test(url);
    const host = pg && !/:\d+$/.test(m[1]) ? `${m[1]}:5432` : m[1];
    return pg ? `${host}${m[2] ?? ''}` : host;
  };
  /** The most telling messages of an error and its causes (drivers wrap the socket error). */
  const reason = (err: unknown): string => {
    const parts: string[] = [];
    let e = err as { message?: unknown; code?: unknown; cause?: unknown; errors?: unknown } | null | undefined;
    for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++, e = e.cause as typeof e) {
      let m = typeof e.message === 'string' ? e.message.replace(/^(postgres|kurrentdb) unavailable: /, '') : '';
      if (!m && Array.isArray(e.errors)) m = e.errors.map((x: { message?: string }) => x?.message).filter(Boolean).join('; ');
      const code = typeof e.code === 'string' ? e.code : '';
      if (code && !m.includes(code)) m = m ? `${m} [${code}]` : code;
      if (!m || parts.some((x) => x.includes(m))) continue;
      const covered = parts.findIndex((x) => m.includes(x));
      if (covered >= 0) parts[covered] = m;
      else parts.push(m);
    }
    const text = parts.join(': ') || String(err);
    // The KurrentDB client says only "UnavailableError" when it cannot connect.
    return /^UnavailableError(: UnavailableError)*$/.test(text) ? 'server unavailable (not listening, unknown host or TLS mismatch)' : text;
  };
  const startupError = (what: string, err: unknown): Error => {
    const out = new Error(`${what}: ${reason(err)}`, { cause: err });
    // main.ts prints the stack: keep it to the sentence (the cause keeps the original).
    out.stack = `${out.name}: ${out.message}`;
    return out;
  };
  const openPostgresReadModel = async (pool: PgPool | undefined, url: string): Promise<BalanceReadModel> => {
    const readModel = new PostgresBalanceReadModel({ pool, url, schema: config.postgresSchema });
    try {
      await readModel.init();
      return readModel;
    } catch (err) {
      await readModel.close().catch(() => undefined);
      throw startupError(
        `balance read model: cannot open or migrate its tables in PostgreSQL at ${hostOf(url)} (DATABASE_URL, schema "${config.postgresSchema}")`,
        err,
      );
    }
  };

  /** The read models' own SQLite file, DATA_DIR/read-model.db (see read-model-file.ts). */
  const openSqliteReadModel = async (): Promise<SqliteBalanceReadModel> => {
    const file = path.join(config.dataDir, READ_MODEL_FILE);
    ownerOnlyFiles(config.dataDir, file);
    let db: Database.Database;
    try {
      db = openReadModelDb(config.dataDir, config.sqliteSynchronous);
    } catch (err) {
      throw startupError(`balance read model: cannot open SQLite file ${file} (DATA_DIR)`, err);
    }
    const readModel = new SqliteBalanceReadModel(db, true);
    try {
      await readModel.init();
    } catch (err) {
      db.close();
      throw startupError(`balance read model: cannot create its tables in SQLite file ${file} (DATA_DIR)`, err);
    }
    return readModel;
  };

  switch (config.eventStore) {
    case 'sqlite': {
      ownerOnlyFiles(config.dataDir, config.sqliteFile);
      const sqlite = new SqliteEventStore(config.sqliteFile, { synchronous: config.sqliteSynchronous });
      let readModel: SqliteBalanceReadModel;
      try {
        readModel = await openSqliteReadModel();
        // A data directory of an earlier version keeps its read models in the store's file: moved once.
        await moveReadModelsOutOfStore(sqlite.db, readModel.db);
      } catch (err) {
        await sqlite.close().catch(() => undefined);
        throw err;
      }
      // TEST ONLY hook (undocumented for operators): the same store with sparse, gapped positions,
      // so the end-to-end tests prove no code assumes dense positions (KurrentDB's are sparse).
      const store: EventStore = process.env.METERING_TEST_SPARSE_POSITIONS === '1' ? new SparsePositionsStore(sqlite) : sqlite;
      return { store, readModel };
    }
    case 'postgres': {
      const url = config.postgresUrl as string; // loadConfig requires it for postgres
      let store: PostgresEventStore;
      try {
        store = await createEventStore({ kind: 'postgres', url, schema: config.postgresSchema });
      } catch (err) {
        throw startupError(
          `EVENT_STORE=postgres: cannot open the event store in PostgreSQL at ${hostOf(url)} (DATABASE_URL, schema "${config.postgresSchema}")`,
          err,
        );
      }
      try {
        return { store, readModel: await openPostgresReadModel(store.pool, url) };
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
    }
    case 'kurrentdb': {
      const url = config.kurrentdbUrl as string; // loadConfig requires it for kurrentdb
      let store: KurrentDbEventStore;
      try {
        store = await createEventStore({ kind: 'kurrentdb', url, maxAppendBytes: config.kurrentdbMaxAppendBytes });
        // The client connects lazily: probe now so an unreachable server fails the start, clearly.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          // A read of the store's own identity stream, not of $all: an access problem on $all is
          // then reported by name (the projection's first read) instead of as "cannot reach".
          store.storeId().finally(() => clearTimeout(timer)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
          }),
        ]).catch(async (err) => {
          await store.close().catch(() => undefined);
          throw err;
        });
      } catch (err) {
        const denied = /access denied/i.test(String((err as Error)?.message));
        throw startupError(
          denied
            ? `EVENT_STORE=kurrentdb: KurrentDB at ${hostOf(url)} denied the user of KURRENTDB_URL access (see README, KurrentDB user and ACLs)`
            : `EVENT_STORE=kurrentdb: cannot reach KurrentDB at ${hostOf(url)} (KURRENTDB_URL)`,
          err,
        );
      }
      try {
        if (config.postgresUrl) return { store, readModel: await openPostgresReadModel(undefined, config.postgresUrl) };
        return { store, readModel: await openSqliteReadModel() };
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
    }
    default: {
      const kind: never = config.eventStore;
      throw new Error(`EVENT_STORE=${String(kind)}: unknown event store`);
    }
  }
}

/**
 * DATA_DIR and the SQLite files in it are the owner's alone: the directory is created 0700, the
 * database file is created (or narrowed to) 0600 before SQLite opens it, and SQLite gives its
 * -wal and -shm files the database file's mode.
 */
export function ownerOnlyFiles(dir: string, dbFile: string): void {
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) {
    if (f === dbFile && !fs.existsSync(f)) fs.closeSync(fs.openSync(f, 'a', 0o600));
    try {
      if ((fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
