/**
 * Issue 14 part 6: projector replicas on one PostgreSQL schema, the balance read model AND its
 * follower, the usage breakdown (whose rows are increments: `used = used + excluded.used`, so an
 * event applied twice would count twice). Three Projectors, each with its own pool and its own page
 * size, follow the store live while a seeded workload is ingested, and are stopped and started
 * again along the way; then every one catches up. Both read models must equal a single projector's
 * into another schema, field for field: each event applied once, whichever replica applied it.
 */
import { PostgresEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { PostgresBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/postgres-breakdown-read-model';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { Projector } from '../../apps/metering/src/projection/projector';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { WorkloadClock, generateWorkload, runWorkload } from '../support/workload';

jest.setTimeout(120_000);
const quiet = { error: (obj: unknown) => console.error('projector error', obj), info: () => undefined };

test('three projector replicas, restarted while they follow a live workload, apply every event once to the balances and the breakdown', async () => {
  const schema = freshSchemaName('projreplicas');
  const reference = `${schema}_ref`;
  const store = new PostgresEventStore({ url: PG_URL, schema });
  const opened: { close(): Promise<void> }[] = [];
  const replica = async (s: string, pageSize: number) => {
    const balances = new PostgresBalanceReadModel({ url: PG_URL, schema: s });
    await balances.init();
    opened.push(balances);
    const breakdown = new PostgresBreakdownReadModel(balances.pool, s);
    await breakdown.init();
    return { balances, breakdown, projector: new Projector(store, balances, quiet, 10, pageSize, [breakdown]) };
  };
  try {
    await store.migrate();
    const replicas = await Promise.all([replica(schema, 7), replica(schema, 23), replica(schema, 61)]);
    for (const r of replicas) await r.projector.start();

    const workload = generateWorkload({ seed: 14, spaces: 30, events: 1200 });
    const clock = new WorkloadClock(workload.start);
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    let restarts = 0;
    const run = await runWorkload(workload, {
      ingest: new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds),
      clock,
      afterStep: async (_step, i) => {
        // Now and then one replica stops and starts again from the shared checkpoints, mid-stream.
        if (i % 17 === 5) {
          const r = replicas[restarts++ % replicas.length];
          await r.projector.stop();
          await r.projector.start();
        }
      },
    });
    expect(run.rejected).toEqual([]);
    expect(restarts).toBeGreaterThan(5);
    await Promise.all(replicas.map((r) => r.projector.catchUp()));
    for (const r of replicas) await r.projector.stop();

    const ref = await replica(reference, 500);
    await ref.projector.catchUp();
    const expectedBalances = await ref.balances.dump();
    const expectedBreakdown = await ref.breakdown.dump();
    expect(expectedBreakdown.rows.length).toBeGreaterThan(30);
    expect(expectedBreakdown.rows.reduce((n, r) => n + r.events, 0)).toBeGreaterThan(1000);
    expect(await replicas[0].balances.dump()).toEqual(expectedBalances);
    expect(await replicas[1].breakdown.dump()).toEqual(expectedBreakdown);
    expect(await replicas[2].balances.checkpoint()).toBe(await ref.balances.checkpoint());
    expect(await replicas[2].breakdown.checkpoint()).toBe(await ref.breakdown.checkpoint());
  } finally {
    for (const o of opened) await o.close().catch(() => undefined);
    await store.close();
    await dropSchema(schema);
    await dropSchema(reference);
  }
});
