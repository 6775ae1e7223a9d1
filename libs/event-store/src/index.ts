export * from './port';
export { SqliteEventStore, SQLITE_WAL_AUTOCHECKPOINT_PAGES, setWalCheckpointInterval } from './sqlite/sqlite-event-store';
export type { SqliteEventStoreOptions } from './sqlite/sqlite-event-store';
export { PostgresEventStore, pgConnection } from './postgres/postgres-event-store';
export { applyMigrations, type Migration } from './postgres/migrations';
export type { PostgresEventStoreOptions } from './postgres/postgres-event-store';
export { KurrentDbEventStore } from './kurrentdb/kurrentdb-event-store';
export type { KurrentDbEventStoreOptions } from './kurrentdb/kurrentdb-event-store';

import type { EventStore } from './port';
import { KurrentDbEventStore } from './kurrentdb/kurrentdb-event-store';
import { PostgresEventStore } from './postgres/postgres-event-store';
import { SqliteEventStore } from './sqlite/sqlite-event-store';

export type EventStoreConfig =
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgres'; url: string; schema?: string }
  | { kind: 'kurrentdb'; url: string; maxAppendBytes?: number };

/**
 * Opens the configured store, ready to use: PostgreSQL migrations are applied (safe when several
 * instances start at once). The caller owns the store and must `close()` it.
 */
export function createEventStore(config: { kind: 'sqlite'; file: string }): Promise<SqliteEventStore>;
export function createEventStore(config: { kind: 'postgres'; url: string; schema?: string }): Promise<PostgresEventStore>;
export function createEventStore(config: { kind: 'kurrentdb'; url: string; maxAppendBytes?: number }): Promise<KurrentDbEventStore>;
export function createEventStore(config: EventStoreConfig): Promise<EventStore>;
export async function createEventStore(config: EventStoreConfig): Promise<EventStore> {
  switch (config.kind) {
    case 'sqlite':
      return new SqliteEventStore(config.file);
    case 'postgres': {
      const store = new PostgresEventStore({ url: config.url, schema: config.schema });
      try {
        await store.migrate();
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
      return store;
    }
    case 'kurrentdb':
      return new KurrentDbEventStore({ url: config.url, maxAppendBytes: config.maxAppendBytes });
    default: {
      const kind: never = config;
      throw new TypeError(`unknown event store kind: ${JSON.stringify(kind)}`);
    }
  }
}
export {
  chunkByBytes,
  newEventBytes,
  KURRENTDB_DEFAULT_MAX_APPEND_BYTES,
} from './internal/append-budget';
