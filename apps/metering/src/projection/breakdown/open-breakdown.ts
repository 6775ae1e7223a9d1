import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { type EventStore, SqliteEventStore } from '@metering/event-store';
import type { AppConfig } from '../../config';
import type { BalanceReadModel } from '../balance-read-model';
import { PostgresBalanceReadModel } from '../postgres-balance-read-model';
import type { BreakdownReadModel } from './breakdown';
import { PostgresBreakdownReadModel } from './postgres-breakdown-read-model';
import { SqliteBreakdownReadModel } from './sqlite-breakdown-read-model';

/**
 * Opens the breakdown read model next to the balance read model, ready to use (tables created):
 * PostgreSQL read model -> the same pool and schema; SQLite event store -> the store's own
 * connection (same file, same thread: transactions never interleave); KurrentDB with a SQLite read
 * model -> a connection of its own to DATA_DIR/read-model.db.
 */
export async function openBreakdownReadModel(config: AppConfig, storage: { store: EventStore; readModel: BalanceReadModel }): Promise<BreakdownReadModel> {
  let model: BreakdownReadModel;
  if (storage.readModel instanceof PostgresBalanceReadModel) model = new PostgresBreakdownReadModel(storage.readModel.pool, storage.readModel.schema);
  else if (storage.store instanceof SqliteEventStore) model = new SqliteBreakdownReadModel(storage.store.db);
  else {
    fs.mkdirSync(config.dataDir, { recursive: true });
    const db = new Database(path.join(config.dataDir, 'read-model.db'));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${config.sqliteSynchronous}`);
    db.pragma('busy_timeout = 5000');
    model = new SqliteBreakdownReadModel(db, true);
  }
  try {
    await model.init();
  } catch (err) {
    await model.close().catch(() => undefined);
    throw new Error(`usage breakdown read model: cannot create its tables: ${(err as Error).message}`, { cause: err });
  }
  return model;
}
