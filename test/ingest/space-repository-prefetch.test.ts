/**
 * SpaceRepository.prefetch (batched cold loads, issue 14 part 2) gives each Space exactly the state
 * `load` gives it: from a snapshot and its tail, from a whole stream, and for a Space with no stream;
 * a Space already cached keeps its entry; a store without `readColdStarts` is left to `load`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { InboundEvent } from '@metering/domain';
import { type EventStore, SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';

const NOW = Date.parse('2026-11-20T12:00:00Z');
const clock: Clock = { now: () => NOW };

describe('SpaceRepository.prefetch', () => {
  let dir: string;
  let store: SqliteEventStore;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-prefetch-'));
    store = new SqliteEventStore(path.join(dir, 'metering.db'));
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    // Snapshots every 10 events: "snap" gets snapshots and a tail, "plain" stays under it.
    const ingest = new IngestService(store, new SpaceRepository(store, { snapshotEvery: 10 }), catalog, clock, systemIds);
    const events: InboundEvent[] = [];
    for (const spaceId of ['snap', 'plain'])
      events.push({ type: 'subscription-changed', eventId: `sub-${spaceId}`, spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z' });
    for (let i = 0; i < 25; i++)
      events.push({ type: 'generation-performed', eventId: `g-${i}`, spaceId: 'snap', userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: '2026-11-19T10:00:00Z' });
    events.push({ type: 'generation-performed', eventId: 'p-1', spaceId: 'plain', userId: 'u', feature: 'ai_video', medium: 'video', generations: 1, occurredAt: '2026-11-19T10:00:00Z' });
    for (const e of events) await ingest.ingest([e]); // one append each: snapshots are written along the way
    await new Promise((r) => setTimeout(r, 50)); // snapshot writes are fire-and-forget
    expect(await store.readSnapshot('space-snap')).not.toBeNull();
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the same state as load, from a snapshot and tail, a whole stream, and no stream', async () => {
    const loads: { spaceId: string; eventsRead: number; fromSnapshot: boolean }[] = [];
    const batched = new SpaceRepository(store, { onLoad: (l) => loads.push(l) });
    await batched.prefetch(['snap', 'plain', 'none', 'snap'], NOW);
    expect(loads.map((l) => [l.spaceId, l.fromSnapshot]).sort()).toEqual([['none', false], ['plain', false], ['snap', true]]);
    loads.length = 0;
    const single = new SpaceRepository(store);
    for (const id of ['snap', 'plain', 'none']) expect(await batched.load(id, NOW)).toEqual(await single.load(id, NOW));
    expect(loads).toEqual([]); // every load above was a hit
  });

  test('a cached Space keeps its entry; without readColdStarts nothing is read', async () => {
    const repo = new SpaceRepository(store);
    const cached = await repo.load('plain', NOW);
    await repo.prefetch(['plain'], NOW);
    expect(await repo.load('plain', NOW)).toBe(cached);

    const reads: string[] = [];
    const plain = new Proxy(store, {
      get: (t, p) => (p === 'readColdStarts' ? undefined : p === 'readStream' ? (n: string, o: unknown) => (reads.push(n), t.readStream(n, o as never)) : Reflect.get(t, p, t)),
    }) as EventStore;
    const fallback = new SpaceRepository(plain);
    await fallback.prefetch(['snap'], NOW);
    expect(reads).toEqual([]);
    expect(await fallback.load('snap', NOW)).toEqual(await new SpaceRepository(store).load('snap', NOW));
  });

  test('a batched read returns at most prefetchEvents events, whatever the Spaces hold; the states are those load gives', async () => {
    // Six Spaces of 61 events each and no snapshot: unbounded, one read would return 366 events.
    const seedRepo = new SpaceRepository(store, { snapshotEvery: 1_000_000 });
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const ingest = new IngestService(store, seedRepo, catalog, clock, systemIds);
    const ids = Array.from({ length: 6 }, (_, k) => `big-${k}`);
    for (const spaceId of ids) {
      await ingest.ingest([{ type: 'subscription-changed', eventId: `sub-${spaceId}`, spaceId, plan: 'ultra', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z' }]);
      await ingest.ingest(Array.from({ length: 60 }, (_, i): InboundEvent => ({ type: 'generation-performed', eventId: `${spaceId}-${i}`, spaceId, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: '2026-11-19T10:00:00Z' })));
    }
    const reads: number[] = [];
    const counted = new Proxy(store, {
      get: (t, p) =>
        p === 'readColdStarts'
          ? async (names: string[], maxCount: number) => {
              const got = await t.readColdStarts(names, maxCount);
              reads.push([...got.values()].reduce((n, c) => n + c.events.length, 0));
              return got;
            }
          : Reflect.get(t, p, t),
    }) as EventStore;
    for (const budget of [100, 4]) {
      reads.length = 0;
      const loads: string[] = [];
      const repo = new SpaceRepository(counted, { snapshotEvery: 1_000_000, prefetchEvents: budget, onLoad: (l) => loads.push(l.spaceId) });
      await repo.prefetch(ids, NOW);
      expect(reads.length).toBeGreaterThan(0);
      for (const n of reads) expect(n).toBeLessThanOrEqual(budget);
      expect(loads.sort()).toEqual([...ids].sort()); // every Space loaded by the prefetch, read on where its share ran out
      const single = new SpaceRepository(store, { snapshotEvery: 1_000_000 });
      for (const id of ids) {
        const state = await repo.load(id, NOW);
        expect(state.version).toBe(61);
        expect(state).toEqual(await single.load(id, NOW));
      }
      expect(loads).toHaveLength(ids.length); // the loads above were hits
    }
    expect(() => new SpaceRepository(store, { prefetchEvents: 0 })).toThrow(/prefetchEvents/);
  });

  test('a long stream without a snapshot: the load time reported covers the whole fold, not only the batched read', async () => {
    // 12,000 events, no snapshot: prefetch reads the first page of 5,000 in its batched read and
    // foldTail reads and folds the rest; the reported time must cover both.
    const seedRepo = new SpaceRepository(store, { snapshotEvery: 1_000_000 });
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const ingest = new IngestService(store, seedRepo, catalog, clock, systemIds);
    await ingest.ingest([{ type: 'subscription-changed', eventId: 'sub-long', spaceId: 'long', plan: 'ultra', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z' }]);
    for (let b = 0; b < 24; b++)
      await ingest.ingest(Array.from({ length: 500 }, (_, i): InboundEvent => ({ type: 'generation-performed', eventId: `long-${b}-${i}`, spaceId: 'long', userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: '2026-11-19T10:00:00Z' })));
    expect(await store.readSnapshot('space-long')).toBeNull();
    const loads: { eventsRead: number; ms: number }[] = [];
    const repo = new SpaceRepository(store, { snapshotEvery: 1_000_000, onLoad: (l) => loads.push(l) });
    const started = performance.now();
    await repo.prefetch(['long'], NOW);
    const elapsed = performance.now() - started;
    expect(loads).toHaveLength(1);
    expect(loads[0].eventsRead).toBeGreaterThan(12_000);
    expect(loads[0].ms).toBeGreaterThan(0.5 * elapsed);
    expect(loads[0].ms).toBeLessThanOrEqual(elapsed);
  });
});
