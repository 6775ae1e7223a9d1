/**
 * PostgresBalanceReadModel specifics on the real PostgreSQL: migrations are safe when several
 * instances start at once; `apply` is atomic with its checkpoint, so pages applied twice or by two
 * projectors at once change nothing; and it agrees with the SQLite read model field for field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { PostgresEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { WorkloadClock, generateWorkload, generationPerformed, runWorkload, subscriptionChanged } from '../support/workload';

jest.setTimeout(60_000);
const silent = { error: (obj: unknown) => console.error('projector error', obj), info: () => undefined };
const schemas: string[] = [];
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

/** A PostgreSQL store in a fresh schema, and a SQLite balance read model in a temporary file to compare with. */
function storeAndReference(tag: string) {
  const schema = freshSchemaName(tag);
  schemas.push(schema);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-rm-pg-'));
  const store = new PostgresEventStore({ url: PG_URL, schema });
  const reference = new SqliteBalanceReadModel(new Database(path.join(dir, 'rm.db')), true);
  const close = async () => {
    await Promise.all([reference.close(), store.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { schema, store, reference, close };
}

test('init() from several instances at once applies each migration once, and is idempotent', async () => {
  const schema = freshSchemaName('rminit');
  schemas.push(schema);
  const models = Array.from({ length: 4 }, () => new PostgresBalanceReadModel({ url: PG_URL, schema }));
  try {
    await Promise.all(models.map((m) => m.init()));
    await models[0].init();
    const { rows } = await models[0].pool.query(`SELECT version, count(*)::int AS n FROM "${schema}".read_model_migrations GROUP BY version ORDER BY version`);
    expect(rows).toEqual([{ version: 1, n: 1 }, { version: 2, n: 1 }, { version: 3, n: 1 }]);
    // Migration 3: free room on each page for HOT updates of the per-event columns.
    const opts = await models[0].pool.query(
      `SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname IN ('rm_spaces', 'rm_usage') ORDER BY c.relname`,
      [schema],
    );
    expect(opts.rows).toEqual([{ relname: 'rm_spaces', reloptions: ['fillfactor=70'] }, { relname: 'rm_usage', reloptions: ['fillfactor=70'] }]);
    expect(await models[1].checkpoint()).toBe(0n);
    expect(await models[2].dueForReset(Date.now(), 10)).toEqual([]);
  } finally {
    await Promise.all(models.map((m) => m.close()));
  }
});

test('pages applied twice, or by two projectors at once, give the same rows as SQLite', async () => {
  const { schema, store, reference, close } = storeAndReference('rmapply');
  const a = new PostgresBalanceReadModel({ url: PG_URL, schema });
  const b = new PostgresBalanceReadModel({ url: PG_URL, schema });
  try {
    await store.migrate();
    const workload = generateWorkload({ seed: 7, spaces: 40, events: 1200 });
    const clock = new WorkloadClock(workload.start);
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const run = await runWorkload(workload, { ingest: new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds), clock });
    expect(run.rejected).toEqual([]);
    await Promise.all([a.init(), b.init(), reference.init()]);
    await new Projector(store, reference, silent).catchUp();
    const expected = await reference.dump();
    expect(expected.usage.length).toBeGreaterThan(40);

    // Two projectors with different page sizes race over the same events.
    await Promise.all([new Projector(store, a, silent, 20, 37).catchUp(), new Projector(store, b, silent, 20, 53).catchUp()]);
    expect(await a.dump()).toEqual(expected);
    expect(await a.checkpoint()).toBe(await reference.checkpoint());

    // A page at or before the checkpoint changes nothing.
    const again = await store.readAll({ maxCount: 300, streamPrefix: 'space-' });
    await a.apply(again);
    expect(await b.dump()).toEqual(expected);
    expect(await b.checkpoint()).toBe(await reference.checkpoint());

    // Point reads agree with SQLite too.
    const some = expected.spaces[5].spaceId;
    expect(await a.getSpace(some)).toEqual(await reference.getSpace(some));
    expect(await a.usage(some)).toEqual(await reference.usage(some));
    const u = expected.usage.find((r) => r.spaceId === some);
    if (u) expect(await a.usedIn(some, u.periodStart)).toEqual(u.used);
    expect(await a.usedIn(some, 1)).toEqual({ ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 });
    expect(await a.getSpace('no-such-space')).toBeNull();
    // Every Space with a next reset, in the same order (next_reset_at, then space_id in byte order).
    const later = workload.end + 400 * 86_400_000;
    const due = await reference.dueForReset(later, 1000);
    expect(due.length).toBeGreaterThan(10);
    expect(await a.dueForReset(later, 1000)).toEqual(due);
    expect(await a.dueForReset(later, 7)).toEqual(due.slice(0, 7));
    expect(await a.dueForReset(workload.start, 1000)).toEqual([]);
  } finally {
    await Promise.all([a.close(), b.close(), close()]);
  }
});

test('a page of uses loads only the usage rows of the periods they recorded, not every past period of their Spaces', async () => {
  const { schema, store, reference, close } = storeAndReference('rmloads');
  const rm = new PostgresBalanceReadModel({ url: PG_URL, schema });
  try {
    await store.migrate();
    await Promise.all([rm.init(), reference.init()]);
    const t0 = Date.parse('2024-01-01T00:00:00Z');
    const clock = new WorkloadClock(t0);
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
    let n = 0;
    const use = (spaceId: string, at: number) =>
      generationPerformed({ eventId: `use-${n++}`, spaceId, userId: 'ann', occurredAt: at }, { feature: 'ai_backgrounds', medium: 'image', generations: 1 });
    const accept = async (events: Parameters<IngestService['ingest']>[0]) => expect((await ingest.ingest(events)).map((o) => o.outcome)).toEqual(events.map(() => 'accepted'));
    await accept(['busy', 'calm'].map((spaceId) => subscriptionChanged({ eventId: `sub-${spaceId}`, spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: t0 })));
    // 24 monthly periods of use for both Spaces.
    for (let m = 0; m < 24; m++) {
      const at = Date.UTC(2024, m, 2);
      clock.advanceTo(at);
      await accept([use('busy', at), use('calm', at)]);
    }
    const projector = new Projector(store, rm, silent, 20, 10_000);
    await projector.catchUp();
    expect((await rm.usage('busy')).length).toBe(24);

    // One page: two uses of one Space in the running period, one of the other.
    const now = Date.UTC(2025, 11, 20);
    clock.advanceTo(now);
    await accept([use('busy', now), use('busy', now + 1000), use('calm', now)]);
    await projector.catchUp();
    expect(rm.loads).toEqual({ spaceRows: 0, usageRows: 2, folds: 1 });

    // A subscription change reads the Space row and may move usage between any of its periods.
    await accept([subscriptionChanged({ eventId: 'sub-busy-2', spaceId: 'busy', plan: 'max', cycle: 'monthly', effectiveAt: now + 2000 }), use('calm', now + 3000)]);
    await projector.catchUp();
    expect(rm.loads).toEqual({ spaceRows: 1, usageRows: 25, folds: 1 });

    // And the rows are those SQLite folds from the same events.
    await new Projector(store, reference, silent).catchUp();
    expect(await rm.dump()).toEqual(await reference.dump());
  } finally {
    await Promise.all([rm.close(), close()]);
  }
});
