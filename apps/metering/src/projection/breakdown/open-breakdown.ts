import type { EventStore } from '@metering/event-store';
import type { AppConfig } from '../../config';
import type { BalanceReadModel } from '../balance-read-model';
import { PostgresBalanceReadModel } from '../postgres-balance-read-model';
import { SqliteBalanceReadModel } from '../sqlite-balance-read-model';
import type { BreakdownReadModel } from './breakdown';
import { PostgresBreakdownReadModel } from './postgres-breakdown-read-model';
import { SqliteBreakdownReadModel } from './sqlite-breakdown-read-model';

/**
 * Opens the breakdown read model next to the balance read model, ready to use (tables created):
 * PostgreSQL read model -> the same pool and schema; SQLite read model -> the same connection
 * (same file, same thread: transactions never interleave).
 */
export async function openBreakdownReadModel(_config: AppConfig, storage: { store: EventStore; readModel: BalanceReadModel }): Promise<BreakdownReadModel> {
  let model: BreakdownReadModel;
  if (storage.readModel instanceof PostgresBalanceReadModel) model = new PostgresBreakdownReadModel(storage.readModel.pool, storage.readModel.schema);
  else if (storage.readModel instanceof SqliteBalanceReadModel) model = new SqliteBreakdownReadModel(storage.readModel.db);
  else throw new Error('usage breakdown read model: no adapter for this balance read model');
  try {
    await model.init();
  } catch (err) {
    await model.close().catch(() => undefined);
    throw new Error(`usage breakdown read model: cannot create its tables: ${(err as Error).message}`, { cause: err });
  }
  return model;
}
