/**
 * Issue 14 part 4: the in-memory entitlement view answers exactly as the read model does once both
 * have every event, whatever the order of loads, evictions and feed reads. A randomized workload
 * (usage, upgrades, changes of cycle, back-dated subscriptions) over 30 Spaces goes through
 * IngestService; the view holds at most 8 Spaces (so loads and evictions happen all the time) and
 * its read model is projected only now and then (so loads fold the stream after a stale row).
 * Checks run concurrently with appends. The reference is a second read model, caught up before
 * each comparison.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { type EntitlementRequest, type InboundEvent, checkEntitlement, periodAt } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { readUsageSource } from '../../apps/metering/src/http/spaces.controller';
import { EntitlementView } from '../../apps/metering/src/projection/entitlement-view';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { prng } from '../support/workload';

jest.setTimeout(60_000);
const silent = { error: () => undefined, info: () => undefined };
const NOW = Date.parse('2026-06-30T12:00:00Z');
const DAY = 86_400_000;
const SPACES = 30;

it('view = read model for every check, with loads, evictions, a lagging read model and concurrent appends', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-view-'));
  const store = new SqliteEventStore(path.join(dir, 'm.db'), { synchronous: 'NORMAL' });
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store, { correctionWindowMs: 35 * DAY }), catalog, { now: () => NOW }, systemIds);
  // The view's read model: projected only now and then.
  const lagging = new SqliteBalanceReadModel(store.db);
  await lagging.init();
  const laggingProjector = new Projector(store, lagging, silent);
  // The reference: its own database, caught up before each comparison.
  const reference = new SqliteBalanceReadModel(new Database(':memory:'), true);
  await reference.init();
  const referenceProjector = new Projector(store, reference, silent);
  // A slow poll: the feed is read when the test says the view must catch up (noteLocalAppend).
  const view = new EntitlementView(store, lagging, { maxSpaces: 8, pollMs: 60_000, batchSize: 7, now: () => NOW });
  await view.start();

  const rand = prng(7);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  let n = 0;
  const randomEvent = (): InboundEvent => {
    const spaceId = `v${Math.floor(rand() * SPACES)}`;
    const eventId = `e-${n++}`;
    const r = rand();
    if (r < 0.15)
      return {
        type: 'subscription-changed', eventId, spaceId, plan: pick(['free', 'pro', 'max', 'ultra'] as const), cycle: pick(['weekly', 'monthly', 'yearly'] as const),
        effectiveAt: new Date(NOW - Math.floor(rand() * 60) * DAY - Math.floor(rand() * DAY)).toISOString(),
      } as InboundEvent;
    const occurredAt = new Date(NOW - Math.floor(rand() * 30 * DAY)).toISOString();
    // Some members whose JSON text has escapes: the view parses those feed events to find their Space.
    const userId = pick(['u', 'u', 'o"brien', 'back\\slash']);
    if (r < 0.3) return { type: 'batch-exported', eventId, spaceId, userId, batchId: `b${n}`, images: 1 + Math.floor(rand() * 80), platform: 'web', occurredAt };
    const [feature, medium] = pick([['ai_backgrounds', 'image'], ['virtual_model', 'image'], ['ai_video', 'video']] as const);
    return { type: 'generation-performed', eventId, spaceId, userId, feature, medium, generations: 1 + Math.floor(rand() * 4), occurredAt };
  };
  const requests: EntitlementRequest[] = [
    { kind: 'generation', feature: 'ai_backgrounds', generations: 1 },
    { kind: 'generation', feature: 'ai_video', generations: 2 },
    { kind: 'batch', images: 10, platform: 'web' },
  ];

  let compared = 0;
  try {
    for (let round = 0; round < 40; round++) {
      const batch = Array.from({ length: 1 + Math.floor(rand() * 12) }, randomEvent);
      const asked = Array.from({ length: 6 }, () => `v${Math.floor(rand() * SPACES)}`);
      // Appends and view reads at the same time (loads may overlap feed reads of the same Space).
      // The view is not told of these appends yet: its feed lags, so a load now folds events the
      // feed will deliver again later (applied once: by stream revision).
      const [outcomes] = await Promise.all([ingest.ingest(batch), ...asked.map((id) => view.source(id, NOW))]);
      const after = Array.from({ length: 4 }, () => `v${Math.floor(rand() * SPACES)}`);
      await Promise.all(after.map((id) => view.source(id, NOW)));
      expect(outcomes.filter((o) => o.outcome === 'rejected' && !o.errors.some((e) => e.rule === 'plan_cycle_exists'))).toEqual([]);
      if (rand() < 0.3) await laggingProjector.catchUp();
      // Every event appended so far is in the view (read-your-writes), and answers equal the reference.
      view.noteLocalAppend(await store.headPosition());
      await referenceProjector.catchUp();
      for (const id of [...asked, ...after]) {
        const fromView = await view.source(id, NOW);
        const fromReadModel = await readUsageSource(reference, id, NOW);
        expect({ id, timeline: fromView.timeline }).toEqual({ id, timeline: fromReadModel.timeline });
        const start = periodAt(fromReadModel.timeline, NOW).start;
        expect({ id, used: fromView.usedIn(start) }).toEqual({ id, used: fromReadModel.usedIn(start) });
        for (const req of requests) expect(checkEntitlement(fromView, req, NOW, catalog.catalog)).toEqual(checkEntitlement(fromReadModel, req, NOW, catalog.catalog));
        compared++;
      }
    }
    const stats = view.viewStats();
    expect(stats.spaces).toBeLessThanOrEqual(8);
    expect(stats.evictions).toBeGreaterThan(0);
    expect(stats.misses).toBeGreaterThan(0);
    expect(stats.hits).toBeGreaterThan(0);
    expect(compared).toBe(400);
  } finally {
    await view.stop();
    await reference.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('a feed event that arrives while its Space is being loaded is applied after the load (not lost)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-view-'));
  const store = new SqliteEventStore(path.join(dir, 'm.db'), { synchronous: 'NORMAL' });
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, { now: () => NOW }, systemIds);
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  await ingest.ingest([{ type: 'subscription-changed', eventId: 's1', spaceId: 'x', plan: 'pro', cycle: 'monthly', effectiveAt: new Date(NOW - DAY).toISOString() } as InboundEvent]);
  // The load's stream read happens at once, but its answer is held until the test releases it.
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  let holding = true;
  const slowStore = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readStream' && holding)
        return async (...args: Parameters<typeof store.readStream>) => {
          const result = await target.readStream(...args);
          await held;
          return result;
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const view = new EntitlementView(slowStore, readModel, { maxSpaces: 10, pollMs: 60_000, now: () => NOW });
  await view.start();
  try {
    const loading = view.source('x', NOW) as Promise<unknown>;
    expect(loading).toBeInstanceOf(Promise);
    await new Promise((r) => setTimeout(r, 20)); // the load has read the stream (one event) and waits
    const [o] = await ingest.ingest([{ type: 'generation-performed', eventId: 'g1', spaceId: 'x', userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 3, occurredAt: new Date(NOW - 1000).toISOString() } as InboundEvent]);
    expect(o.outcome).toBe('accepted');
    // The feed reads the new event while the load is still running.
    await view.waitFor(await store.headPosition(), 5000);
    holding = false;
    release();
    await loading;
    const req: EntitlementRequest = { kind: 'generation', feature: 'ai_backgrounds', generations: 1 };
    expect(checkEntitlement(await view.source('x', NOW), req, NOW, catalog.catalog)).toMatchObject({ ok: true, answer: { used: 6 } });
  } finally {
    release();
    await view.stop();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('asOf moves on while the feed answers, and an event appended elsewhere reaches a held Space within one poll', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-view-'));
  const store = new SqliteEventStore(path.join(dir, 'm.db'), { synchronous: 'NORMAL' });
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, { now: () => Date.now() }, systemIds);
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  const view = new EntitlementView(store, readModel, { maxSpaces: 100, pollMs: 20, now: () => Date.now() });
  await view.start();
  try {
    await ingest.ingest([{ type: 'subscription-changed', eventId: 's1', spaceId: 'a', plan: 'pro', cycle: 'monthly', effectiveAt: new Date(Date.now() - DAY).toISOString() } as InboundEvent]);
    const before = await view.source('a', Date.now()); // a miss: loaded from the (empty) read model and the stream
    const req: EntitlementRequest = { kind: 'generation', feature: 'ai_backgrounds', generations: 1 };
    expect(checkEntitlement(before, req, Date.now(), catalog.catalog)).toMatchObject({ ok: true, answer: { used: 0, limit: 125 } });
    // Appended without telling the view (as another process would): the feed brings it.
    await ingest.ingest([{ type: 'generation-performed', eventId: 'g1', spaceId: 'a', userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 3, occurredAt: new Date().toISOString() } as InboundEvent]);
    const ackAt = Date.now();
    for (;;) {
      const asOf = Date.parse(view.asOf);
      const answer = checkEntitlement(await view.source('a', Date.now()), req, Date.now(), catalog.catalog);
      if (asOf >= ackAt) {
        expect(answer).toMatchObject({ ok: true, answer: { used: 6 } });
        break;
      }
      expect(Date.now() - ackAt).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await view.stop();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
