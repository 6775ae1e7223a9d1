/**
 * Invariant 5 on every adapter that can run here: a projection rebuilt from the streams equals the
 * live one, field for field.
 *
 * For each store: a randomized, seeded workload (test/support/workload/life.ts: >= 10 000 inbound events
 * over 500 Spaces, ~6 months, every plan/cycle pair, upgrades and cycle changes, late events,
 * redeliveries) goes through IngestService while the reset command runs every 2 simulated days and
 * the Projector follows the store live. Then the read model is cleared and rebuilt from the store;
 * the rebuilt dump must equal the live dump. For a sample of Spaces the read model must equal the
 * domain fold of the stream. On PostgreSQL, a SQLite read model projected from the same PostgreSQL
 * events must equal the PostgreSQL read model (the two implementations agree).
 *
 * Size and seed: REBUILD_SPACES, REBUILD_EVENTS, REBUILD_SEED (defaults 500, 10000, 20260101).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { POOLS, type Pool, type SpaceEvent, firedKey, firstResetAfter, foldSpace, spaceStreamName } from '@metering/domain';
import { type EventStore, KurrentDbEventStore, PostgresEventStore, SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import type { BalanceReadModel, ReadModelDump } from '../../apps/metering/src/projection/balance-read-model';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
// issue-15: the usage breakdown read model is rebuilt with the balances and must equal its live self.
import type { BreakdownDump, BreakdownReadModel } from '../../apps/metering/src/projection/breakdown/breakdown';
import { PostgresBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/postgres-breakdown-read-model';
import { SqliteBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/sqlite-breakdown-read-model';
import { rebuildBalances } from '../../apps/metering/src/projection/rebuild';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { expectBreakdownAddsUpToBalances } from '../support/breakdown-sums';
import { type Workload, WorkloadClock, generateWorkload, runWorkload } from '../support/workload';

const SPACES = Number(process.env.REBUILD_SPACES ?? 500);
const EVENTS = Number(process.env.REBUILD_EVENTS ?? 10_000);
const SEED = Number(process.env.REBUILD_SEED ?? 20260101);
const KURRENTDB_URL = process.env.KURRENTDB_URL;
// jest's testTimeout is a global option (ignored per project): set it for this file.
jest.setTimeout(180_000);

const silent = { error: (obj: unknown) => console.error('projector error', obj), info: () => undefined };
const timings: string[] = [];
const time = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings.push(`${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
};
afterAll(() => {
  if (timings.length) console.log(`rebuild timings (${EVENTS} events, ${SPACES} Spaces):\n  ${timings.join('\n  ')}`);
});

/** Runs the workload with a live projector; returns the live dump (the store is left open). */
async function liveRun(label: string, workload: Workload, store: EventStore, readModel: BalanceReadModel, breakdown?: BreakdownReadModel): Promise<ReadModelDump> {
  const clock = new WorkloadClock(workload.start);
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  await readModel.init();
  await breakdown?.init();
  const projector = new Projector(store, readModel, silent, 20, 500, breakdown ? [breakdown] : []);
  await projector.start();
  // The projector must follow while the workload runs: record its checkpoint after each step.
  const checkpoints: bigint[] = [];
  const run = await time(`${label}: workload (ingest + resets + live projection)`, () =>
    runWorkload(workload, { ingest, clock, afterStep: () => void checkpoints.push(projector.checkpoint) }),
  );
  // The last append of this run (a store shared with other writers may have a later head).
  const head = run.lastPosition;
  expect(head).toBeGreaterThan(0n);
  await time(`${label}: live projection drains`, async () => expect(await projector.waitFor(head, 60_000)).toBe(true));
  await projector.stop();

  expect(run.rejected).toEqual([]);
  expect(run.accepted).toBe(workload.stats.distinct);
  expect(run.duplicates).toBe(workload.stats.redeliveries);
  expect(run.accepted + run.duplicates).toBeGreaterThanOrEqual(10_000 * Math.min(1, EVENTS / 10_000));
  expect(run.resetsAppended).toBeGreaterThan(0);
  expect(run.thresholdsCrossed).toBeGreaterThan(0);
  // Live: the checkpoint moved during the run many times, not only in a catch-up at the end. (How
  // many times depends on how the projector's polls fall between the steps: on a loaded machine it
  // applies several steps per page, so a fixed floor, not a share of the steps.)
  const distinct = new Set(checkpoints.filter((c) => c > 0n)).size;
  expect(distinct).toBeGreaterThan(Math.min(workload.steps.length / 4, 25));
  expect(checkpoints[Math.floor(checkpoints.length / 2)]).toBeGreaterThan(0n);
  // Every reset due at the end was appended, and the read model knows it (nothing left due).
  expect(await readModel.dueForReset(clock.now(), 10)).toEqual([]);
  timings.push(
    `${label}: ${run.accepted} accepted, ${run.duplicates} duplicates, ${run.ingestCalls} ingest calls, ${run.appends} appends, ${run.resetPasses} reset passes, ` +
      `${run.resetsAppended} resets, ${run.thresholdsCrossed} thresholds crossed, last position ${head}`,
  );
  return readModel.dump();
}

function expectNonTrivial(dump: ReadModelDump, workload: Workload): void {
  const active = new Set(workload.deliveries.map((d) => d.event.spaceId));
  expect(active.size).toBeGreaterThan(workload.spaceIds.length * 0.95);
  expect(dump.spaces.map((s) => s.spaceId).sort()).toEqual([...active].sort());
  expect(dump.usage.length).toBeGreaterThan(workload.spaceIds.length);
  expect(dump.thresholds.filter((t) => t.state === 'fired').length).toBeGreaterThan(0);
  expect(dump.thresholds.filter((t) => t.state === 'rearmed').length).toBeGreaterThan(0);
  expect(dump.spaces.filter((s) => s.lastResetAt !== null).length).toBeGreaterThan(0);
  expect(dump.spaces.filter((s) => s.nextResetAt !== null).length).toBeGreaterThan(0);
  expect(new Set(dump.spaces.flatMap((s) => s.timeline.map((seg) => `${seg.plan}/${seg.cycle}`))).size).toBeGreaterThanOrEqual(20);
  for (const pool of POOLS) expect(dump.usage.some((u) => u.used[pool] > 0)).toBe(true);
}

async function rebuild(label: string, store: EventStore, readModel: BalanceReadModel, breakdown?: BreakdownReadModel): Promise<ReadModelDump> {
  await readModel.clear();
  expect(await readModel.dump()).toEqual({ spaces: [], usage: [], thresholds: [] });
  expect(await readModel.checkpoint()).toBe(0n);
  if (breakdown) {
    await breakdown.clear();
    expect(await breakdown.dump()).toEqual({ rows: [], watch: [] });
    expect(await breakdown.checkpoint()).toBe(0n);
  }
  await time(`${label}: rebuild from the store`, () => new Projector(store, readModel, silent, 20, 1000, breakdown ? [breakdown] : []).catchUp());
  return readModel.dump();
}

/**
 * issue-15: the breakdown equals a plain fold of the Space streams (written here, apart from the
 * read model's code): usage summed by (Space, recorded periodStart, userId, feature); the watch
 * rows are the last threshold event per (Space, pool, threshold) of the latest period, rows of
 * periods before a reset dropped.
 */
async function expectBreakdownEqualsFold(store: EventStore, dump: BreakdownDump, workload: Workload, balances: ReadModelDump): Promise<void> {
  const ids = new Set(workload.spaceIds);
  const rows = new Map<string, BreakdownDump['rows'][number]>();
  const watch = new Map<string, BreakdownDump['watch'][number]>();
  let movedRows = 0;
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: 5000, streamPrefix: 'space-' });
    if (page.length === 0) break;
    after = page[page.length - 1].globalPosition;
    for (const e of page) {
      const d = e.data as Record<string, any>;
      if (!ids.has(d.spaceId)) continue;
      if (e.type === 'GenerationRecorded' || e.type === 'BatchExportRecorded') {
        const feature = e.type === 'GenerationRecorded' ? d.feature : 'batch_export';
        const k = [d.spaceId, new Date(d.periodStart).toISOString(), d.userId, feature].join('|');
        const r = rows.get(k) ?? { spaceId: d.spaceId, periodStart: Date.parse(d.periodStart), userId: d.userId, feature, used: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 }, events: 0 };
        if (e.type === 'GenerationRecorded') r.used[d.pool as Pool] += d.credits;
        else r.used.batch_exports += d.images;
        r.events += 1;
        rows.set(k, r);
      } else if (e.type === 'ThresholdCrossed' || e.type === 'ThresholdRearmed') {
        const k = [d.spaceId, d.pool, d.threshold].join('|');
        const old = watch.get(k);
        if (!old || Date.parse(d.periodStart) >= old.periodStart)
          watch.set(k, {
            spaceId: d.spaceId, pool: d.pool, threshold: d.threshold, periodStart: Date.parse(d.periodStart),
            state: e.type === 'ThresholdCrossed' ? 'fired' : 'rearmed', used: d.used, limit: d.limit, position: e.globalPosition.toString(), recordedAt: e.recordedAt,
          });
      } else if (e.type === 'PeriodReset') {
        for (const [k, w] of watch) if (w.spaceId === d.spaceId && w.periodStart < Date.parse(d.periodStart)) watch.delete(k);
      } else if (e.type === 'SubscriptionChanged') {
        // usage a back-dated change moved between periods, per member and feature
        for (const m of (d.memberMoves ?? []) as { from: string; to: string; userId: string; feature: string; used: Record<Pool, number>; usageEvents: number }[]) {
          movedRows++;
          for (const [periodStart, sign] of [[m.from, -1], [m.to, 1]] as const) {
            const k = [d.spaceId, new Date(periodStart).toISOString(), m.userId, m.feature].join('|');
            const r = rows.get(k) ?? { spaceId: d.spaceId, periodStart: Date.parse(periodStart), userId: m.userId, feature: m.feature, used: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 }, events: 0 };
            for (const pool of POOLS) r.used[pool] += sign * m.used[pool];
            r.events += sign * m.usageEvents;
            if (r.events === 0) rows.delete(k);
            else rows.set(k, r);
          }
        }
      }
    }
  }
  const byKey = (a: string[], b: string[]) => { for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1; return 0; };
  const expectedRows = [...rows.values()].sort((a, b) => byKey([a.spaceId], [b.spaceId]) || a.periodStart - b.periodStart || byKey([a.userId, a.feature], [b.userId, b.feature]));
  const expectedWatch = [...watch.values()].sort((a, b) => byKey([a.spaceId, a.pool], [b.spaceId, b.pool]) || a.threshold - b.threshold);
  const mine = { rows: dump.rows.filter((r) => ids.has(r.spaceId)), watch: dump.watch.filter((w) => ids.has(w.spaceId)) };
  expect(mine.rows.length).toBe(expectedRows.length);
  expect(mine).toEqual({ rows: expectedRows, watch: expectedWatch });
  // Not trivial: several members and features, all three pools, fired and rearmed thresholds.
  expect(new Set(mine.rows.map((r) => r.feature)).size).toBeGreaterThanOrEqual(5);
  expect(new Set(mine.rows.map((r) => r.userId)).size).toBeGreaterThanOrEqual(3);
  for (const pool of POOLS) expect(mine.rows.some((r) => r.used[pool] > 0)).toBe(true);
  expect(mine.watch.some((w) => w.state === 'fired')).toBe(true);
  // What a customer compares: per Space and period, the breakdown adds up to the balances' usage,
  // also after back-dated changes moved usage between periods (the rows follow `memberMoves`).
  expectBreakdownAddsUpToBalances(mine.rows, balances.usage.filter((u) => ids.has(u.spaceId)));
  console.log(`breakdown: ${mine.rows.length} rows, ${movedRows} member moves followed`);
}

/** The read model of a sample of Spaces equals the domain fold of their streams. */
async function expectSampleEqualsFold(store: EventStore, dump: ReadModelDump, workload: Workload): Promise<void> {
  const active = new Set(workload.deliveries.map((d) => d.event.spaceId));
  const sample = workload.spaceIds.filter((id, i) => i % 10 === 0 && active.has(id));
  for (const spaceId of sample) {
    const stored = await store.readStream(spaceStreamName(spaceId));
    const state = foldSpace(spaceId, stored.map((e) => ({ type: e.type, data: e.data }) as unknown as SpaceEvent));
    const fromDomain = [...state.periods.values()]
      .filter((p) => p.usageEvents > 0)
      .sort((a, b) => a.start - b.start)
      .map((p) => ({ spaceId, periodStart: p.start, periodEnd: p.end, used: p.used, usageEvents: p.usageEvents }));
    expect({ spaceId, usage: dump.usage.filter((u) => u.spaceId === spaceId) }).toEqual({ spaceId, usage: fromDomain });
    const row = dump.spaces.find((s) => s.spaceId === spaceId);
    expect(row).toEqual({
      spaceId,
      timeline: state.timeline,
      lastResetAt: state.lastResetAt,
      nextResetAt: firstResetAfter(state.timeline, state.lastResetAt ?? Number.NEGATIVE_INFINITY),
      revision: state.version - 1,
    });
    const fired = dump.thresholds.filter((t) => t.spaceId === spaceId && t.state === 'fired').map((t) => firedKey(t.periodStart, t.pool as Pool, t.threshold));
    expect(fired.sort()).toEqual([...state.fired].sort());
  }
  // The sample is not trivial either.
  const sampled = dump.usage.filter((u) => sample.includes(u.spaceId));
  expect(sampled.length).toBeGreaterThan(sample.length);
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-rebuild-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe(`rebuild = live, field for field (${EVENTS} inbound events over ${SPACES} Spaces)`, () => {
  const workload = generateWorkload({ seed: SEED, spaces: SPACES, events: EVENTS });

  test('the workload is what it claims to be', () => {
    const s = workload.stats;
    expect(s.deliveries).toBeGreaterThanOrEqual(EVENTS);
    expect(s.redeliveries).toBeGreaterThan(0);
    expect(s.late).toBeGreaterThan(0);
    expect(new Set(s.planCycles).size).toBe(20); // every pair of the default catalog, enterprise included
    expect(new Set(s.features).size).toBe(8);
    expect(new Set(s.platforms).size).toBe(5);
    expect(workload.end - workload.start).toBeGreaterThanOrEqual(180 * 86_400_000);
    // Deterministic: the same seed gives the same deliveries.
    expect(generateWorkload({ seed: SEED, spaces: SPACES, events: EVENTS }).deliveries).toEqual(workload.deliveries);
  });

  test('SQLite file', async () => {
    const store = new SqliteEventStore(path.join(dir, 'metering.db'));
    const readModel = new SqliteBalanceReadModel(store.db);
    const breakdown = new SqliteBreakdownReadModel(store.db); // issue-15
    try {
      const live = await liveRun('sqlite', workload, store, readModel, breakdown);
      expectNonTrivial(live, workload);
      await expectSampleEqualsFold(store, live, workload);
      const liveBreakdown = await breakdown.dump();
      await expectBreakdownEqualsFold(store, liveBreakdown, workload, live);
      expect(await rebuild('sqlite', store, readModel, breakdown)).toEqual(live);
      expect(await breakdown.dump()).toEqual(liveBreakdown);
      // The ops CLI's path (rebuildBalances with the breakdown as a follower) gives the same rows.
      await time('sqlite: rebuildBalances with the breakdown', () => rebuildBalances(store, readModel, { followers: [breakdown] }));
      expect(await readModel.dump()).toEqual(live);
      expect(await breakdown.dump()).toEqual(liveBreakdown);
    } finally {
      await readModel.close();
      await store.close();
    }
  });

  test('PostgreSQL (throw-away schema), and a SQLite read model of the same events agrees', async () => {
    const schema = freshSchemaName('rebuild');
    const store = new PostgresEventStore({ url: PG_URL, schema });
    const readModel = new PostgresBalanceReadModel({ pool: store.pool, schema });
    const breakdown = new PostgresBreakdownReadModel(store.pool, schema); // issue-15
    const sqliteDb = new Database(path.join(dir, 'read-model-from-pg.db'));
    const fromPg = new SqliteBalanceReadModel(sqliteDb, true);
    const breakdownFromPg = new SqliteBreakdownReadModel(sqliteDb);
    try {
      await store.migrate();
      const live = await liveRun('postgres', workload, store, readModel, breakdown);
      expectNonTrivial(live, workload);
      await expectSampleEqualsFold(store, live, workload);
      const liveBreakdown = await breakdown.dump();
      await expectBreakdownEqualsFold(store, liveBreakdown, workload, live);
      await fromPg.init();
      await breakdownFromPg.init();
      await time('postgres: SQLite read model from the PostgreSQL events', () => new Projector(store, fromPg, silent, 20, 1000, [breakdownFromPg]).catchUp());
      expect(await fromPg.dump()).toEqual(live);
      expect(await breakdownFromPg.dump()).toEqual(liveBreakdown);
      expect(await rebuild('postgres', store, readModel, breakdown)).toEqual(live);
      expect(await breakdown.dump()).toEqual(liveBreakdown);
    } finally {
      await fromPg.close();
      await readModel.close();
      await store.close();
      await dropSchema(schema);
    }
  });

  if (!KURRENTDB_URL) console.warn('skipped: no KurrentDB (set KURRENTDB_URL or run where Docker exists)');
  (KURRENTDB_URL ? test : test.skip)('KurrentDB (read model in SQLite)', async () => {
    // The server keeps earlier runs: tag this run's Spaces so its streams are new.
    const tagged = generateWorkload({ seed: SEED, spaces: SPACES, events: EVENTS, tag: `k${randomUUID().slice(0, 8)}-` });
    const store = new KurrentDbEventStore({ url: KURRENTDB_URL as string });
    const readModel = new SqliteBalanceReadModel(new Database(path.join(dir, 'read-model-kurrent.db')), true);
    try {
      const live = await liveRun('kurrentdb', tagged, store, readModel);
      const mine = (d: ReadModelDump): ReadModelDump => {
        const ids = new Set(tagged.spaceIds);
        return { spaces: d.spaces.filter((s) => ids.has(s.spaceId)), usage: d.usage.filter((u) => ids.has(u.spaceId)), thresholds: d.thresholds.filter((t) => ids.has(t.spaceId)) };
      };
      expectNonTrivial(mine(live), tagged);
      await expectSampleEqualsFold(store, live, tagged);
      expect(await rebuild('kurrentdb', store, readModel)).toEqual(live);
    } finally {
      await readModel.close();
      await store.close();
    }
  });
});
