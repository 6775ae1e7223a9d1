/**
 * What the scheduler tests run as "one service process" on PostgreSQL: its own connections, its own
 * Space cache, an ingest service and a reset scheduler, on a clock the test moves.
 */
import { PostgresEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { ResetScheduler } from '../../apps/metering/src/scheduler/reset-scheduler';
import { PG_URL } from '../event-store/pg-test-db';

export const quiet = { error: (obj: unknown) => console.error('scheduler test', obj), info: () => undefined };

export class MovableClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
}

/** One service process on `schema`: its own connections and its own Space cache. */
export async function schedulerProcess(schema: string, clock: Clock) {
  const store = new PostgresEventStore({ url: PG_URL, schema });
  await store.migrate();
  const readModel = new PostgresBalanceReadModel({ url: PG_URL, schema });
  await readModel.init();
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  const scheduler = new ResetScheduler(readModel, ingest, clock, quiet, 60_000, 7);
  return { store, readModel, ingest, scheduler, close: async () => (await readModel.close(), await store.close()) };
}
