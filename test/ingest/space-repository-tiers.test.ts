/**
 * The SpaceRepository's second tier (issue 14 part 2): a state pushed out of the first tier is kept
 * as its snapshot body and comes back, without a store read, as the state a load gives; the tier
 * holds at most its bound; and decisions on restored states are exact (a resend is a duplicate, a
 * new use counts once), even with one state in the first tier.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { InboundEvent } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';

const NOW = Date.parse('2026-11-20T12:00:00Z');
const clock: Clock = { now: () => NOW };
const use = (spaceId: string, eventId: string): InboundEvent => ({
  type: 'generation-performed', eventId, spaceId, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: '2026-11-19T10:00:00Z',
});

describe('SpaceRepository second tier', () => {
  let dir: string;
  let store: SqliteEventStore;
  let catalog: CatalogService;
  const spaces = ['a', 'b', 'c'];
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-tiers-'));
    store = new SqliteEventStore(path.join(dir, 'metering.db'));
    catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
    for (const spaceId of spaces) {
      await ingest.ingest([{ type: 'subscription-changed', eventId: `sub-${spaceId}`, spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z' }]);
      await ingest.ingest([use(spaceId, `${spaceId}-1`), use(spaceId, `${spaceId}-2`)]);
    }
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a state pushed out comes back from its body, equal to a load, with no store read', async () => {
    let coldLoads = 0;
    const repo = new SpaceRepository(store, { maxCached: 1, onLoad: () => coldLoads++ });
    for (const id of spaces) await repo.load(id, NOW);
    expect(coldLoads).toBe(3);
    expect(repo.cached).toMatchObject({ states: 1, compact: 2 });
    for (const id of spaces) expect(await repo.load(id, NOW)).toEqual(await new SpaceRepository(store).load(id, NOW));
    expect(coldLoads).toBe(3); // every load above came from a tier
    repo.invalidate('a');
    await repo.load('a', NOW);
    expect(coldLoads).toBe(4); // invalidate drops the body too
  });

  test('the tier keeps at most its bound; 0 keeps nothing', async () => {
    let coldLoads = 0;
    const none = new SpaceRepository(store, { maxCached: 1, maxCompactChars: 0, onLoad: () => coldLoads++ });
    for (const id of [...spaces, ...spaces]) await none.load(id, NOW);
    expect(coldLoads).toBe(6);
    expect(none.cached.compact).toBe(0);

    const one = new SpaceRepository(store, { maxCached: 1 });
    await one.load('a', NOW);
    await one.load('b', NOW);
    const bound = one.cached.compactChars; // exactly one body
    const small = new SpaceRepository(store, { maxCached: 1, maxCompactChars: bound + 10 });
    for (const id of spaces) await small.load(id, NOW);
    expect(small.cached.compact).toBe(1);
    expect(small.cached.compactChars).toBeLessThanOrEqual(bound + 10);
  });

  test('decisions on restored states are exact: resends are duplicates, new uses count once', async () => {
    const repo = new SpaceRepository(store, { maxCached: 1 });
    const ingest = new IngestService(store, repo, catalog, clock, systemIds);
    const outcomes: string[] = [];
    for (let round = 0; round < 2; round++)
      for (const id of spaces) for (const o of await ingest.ingest([use(id, `${id}-1`), use(id, `${id}-new`)])) outcomes.push(o.outcome);
    expect(outcomes).toEqual(['duplicate', 'accepted', 'duplicate', 'accepted', 'duplicate', 'accepted', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    for (const id of spaces) expect(await repo.load(id, NOW)).toEqual(await new SpaceRepository(store).load(id, NOW));
  });
});
