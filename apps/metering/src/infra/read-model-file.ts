/**
 * The SQLite file of the read models (balances and usage breakdown): `DATA_DIR/read-model.db`,
 * next to the event store's file (`EVENT_STORE=sqlite`) or on its own (`EVENT_STORE=kurrentdb`
 * without `DATABASE_URL`).
 *
 * Why a file of its own: SQLite has one WAL per file. With the read models in the store's file,
 * every append's commit (synchronous=FULL by default) also flushed the read-model pages the
 * projector had written since the last one, and their checkpoints; a page of events over many
 * Spaces dirties one B-tree page per Space. In a file of its own the read model is never fsynced
 * at commit (it is derived data: after a power cut its rows and checkpoint roll back together and
 * the projector applies the events again), and the store's commits carry its events only
 * (bench:flat, 300,000 events over 100,000 Spaces: 5,043-5,222 -> 5,819-6,106 events/s).
 */
import Database from 'better-sqlite3';
import * as path from 'node:path';
import { SQLITE_WAL_AUTOCHECKPOINT_PAGES } from '@metering/event-store';
import { SqliteBreakdownReadModel } from '../projection/breakdown/sqlite-breakdown-read-model';
import { SqliteBalanceReadModel } from '../projection/sqlite-balance-read-model';

export const READ_MODEL_FILE = 'read-model.db';

/**
 * Page cache of the read models' handle, KiB (negative in the pragma). Smaller than the store's
 * 64 MiB: the two used to share one 64 MiB cache, and bench:rss (1,000,000 events over 100,000
 * Spaces, peak RSS under 1 GB) peaked at 974 MiB with a second 64 MiB cache, 897 MiB with one.
 */
const READ_MODEL_CACHE_KB = 16_384;

/** Opens (creating it if needed) the read models' SQLite file: WAL, a page cache of its own, the store's checkpoint interval. */
export function openReadModelDb(dataDir: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  const db = new Database(path.join(dataDir, READ_MODEL_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('busy_timeout = 5000');
    db.pragma(`cache_size = -${READ_MODEL_CACHE_KB}`);
    db.pragma(`wal_autocheckpoint = ${SQLITE_WAL_AUTOCHECKPOINT_PAGES}`);
    db.pragma(`journal_size_limit = ${SQLITE_WAL_AUTOCHECKPOINT_PAGES * (db.pragma('page_size', { simple: true }) as number)}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Moves the read models of an earlier version, kept in the store's file, into the read models'
 * file, once: nothing to replay, the balances and checkpoints are the ones they were. The old
 * tables are first brought to this version's layout in place (the read models' own migrations),
 * then copied column by column into the new file's tables in one transaction, then dropped from
 * the store's file in another. A start interrupted between the two finds the rows already moved
 * (the new file has a checkpoint) and only drops the old tables. Returns the tables moved.
 */
export async function moveReadModelsOutOfStore(storeDb: Database.Database, readModelDb: Database.Database): Promise<string[]> {
  const tablesOf = (db: Database.Database) =>
    new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm\\_%' ESCAPE '\\'").pluck().all() as string[]);
  const old = tablesOf(storeDb);
  if (old.size === 0) return [];
  const rowsIn = (db: Database.Database, t: string) => db.prepare(`SELECT count(*) FROM "${t}"`).pluck().get() as number;
  const moved: string[] = [];
  // Nothing of this version's written yet in the new file (its tables are created by the read models' init).
  const fresh = ['rm_checkpoints', 'rm_breakdown_checkpoint'].every((t) => !tablesOf(readModelDb).has(t) || rowsIn(readModelDb, t) === 0);
  if (fresh) {
    await new SqliteBalanceReadModel(storeDb).init();
    await new SqliteBreakdownReadModel(storeDb).init();
    await new SqliteBalanceReadModel(readModelDb).init();
    await new SqliteBreakdownReadModel(readModelDb).init();
    const target = tablesOf(readModelDb);
    const columnsOf = (schema: string, t: string) =>
      storeDb.prepare(`SELECT name FROM pragma_table_info(?, ?)`).pluck().all(t, schema) as string[];
    storeDb.prepare('ATTACH DATABASE ? AS rm').run(readModelDb.name);
    try {
      storeDb.transaction(() => {
        for (const t of tablesOf(storeDb)) {
          if (!target.has(t)) continue;
          const cols = columnsOf('rm', t).filter((c) => columnsOf('main', t).includes(c));
          const list = cols.map((c) => `"${c}"`).join(', ');
          storeDb.exec(`DELETE FROM rm."${t}"; INSERT INTO rm."${t}" (${list}) SELECT ${list} FROM main."${t}"`);
          moved.push(t);
        }
      })();
    } finally {
      storeDb.exec('DETACH DATABASE rm');
    }
  }
  storeDb.transaction(() => {
    for (const t of tablesOf(storeDb)) storeDb.exec(`DROP TABLE "${t}"`);
  })();
  return moved.sort();
}
