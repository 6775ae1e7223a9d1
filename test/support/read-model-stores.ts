/**
 * A store with its balance and breakdown read models, on SQLite (a file) or PostgreSQL (a
 * throw-away schema), for tests that run one body on both: set up, handed to the body, and closed
 * (the schema dropped) afterwards, whatever the body does.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type EventStore, PostgresEventStore, SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';
import type { BreakdownReadModel } from '../../apps/metering/src/projection/breakdown/breakdown';
import { PostgresBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/postgres-breakdown-read-model';
import { SqliteBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/sqlite-breakdown-read-model';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';

/** A projector's logger for tests: errors to the console, nothing else. */
export const quietProjectorLog = { error: (obj: unknown) => console.error('projector error', obj), info: () => undefined };

export type ReadModelsBody = (store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel) => Promise<void>;

/** `body` on a SQLite store in `file`, the read models in the same file. */
export async function onSqliteReadModels(file: string, body: ReadModelsBody): Promise<void> {
  const store = new SqliteEventStore(file);
  const balances = new SqliteBalanceReadModel(store.db);
  const breakdown = new SqliteBreakdownReadModel(store.db);
  try {
    await body(store, balances, breakdown);
  } finally {
    await balances.close();
    await store.close();
  }
}

/** `body` on a PostgreSQL store in a throw-away schema named after `tag`, the read models in the same schema. */
export async function onPostgresReadModels(tag: string, body: ReadModelsBody): Promise<void> {
  const schema = freshSchemaName(tag);
  const store = new PostgresEventStore({ url: PG_URL, schema });
  const balances = new PostgresBalanceReadModel({ pool: store.pool, schema });
  const breakdown = new PostgresBreakdownReadModel(store.pool, schema);
  try {
    await store.migrate();
    await body(store, balances, breakdown);
  } finally {
    await store.close();
    await dropSchema(schema);
  }
}

/**
 * Both read models initialised, `live` run and `check`ed, then both cleared and rebuilt from the
 * store by a projector (pages of 1,000): the same rows as live, field for field.
 */
export async function liveThenRebuilt<T>(store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, live: () => Promise<T>, check: (result: T) => void): Promise<void> {
  await balances.init();
  await breakdown.init();
  check(await live());
  const balancesLive = await balances.dump();
  const breakdownLive = await breakdown.dump();
  await balances.clear();
  await breakdown.clear();
  await new Projector(store, balances, quietProjectorLog, 10, 1000, [breakdown]).catchUp();
  expect(await balances.dump()).toEqual(balancesLive);
  expect(await breakdown.dump()).toEqual(breakdownLive);
}

/**
 * `body` with projection pages of 1 and of 1,000 events, each on SQLite (a file in a temporary
 * directory, removed afterwards) and on PostgreSQL (a throw-away schema named after `tag`).
 */
export function describeOnBothStores(title: string, tag: string, body: (store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, pageSize: number) => Promise<void>): void {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `metering-${tag}-`));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  describe.each([1, 1000])(`${title} (projection pages of %i events)`, (pageSize) => {
    test('SQLite', () => onSqliteReadModels(path.join(dir, `metering-${pageSize}.db`), (s, b, d) => body(s, b, d, pageSize)));
    test('PostgreSQL (throw-away schema)', () => onPostgresReadModels(tag, (s, b, d) => body(s, b, d, pageSize)));
  });
}

/**
 * The service's ingest path on `store` with a clock the scenario sets: `send(when, events)` decides
 * and appends the events at instant `when` and expects every one accepted.
 */
export async function clockedIngest(store: EventStore): Promise<{ send: (when: string, events: Parameters<IngestService['ingest']>[0]) => Promise<void> }> {
  let now = 0;
  const clock: Clock = { now: () => now };
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  return {
    send: async (when, events) => {
      now = Date.parse(when);
      const outcomes = await ingest.ingest(events);
      expect(outcomes.map((o) => o.outcome)).toEqual(events.map(() => 'accepted'));
    },
  };
}
