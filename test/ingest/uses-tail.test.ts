/**
 * A Space state keeps a bounded tail of its uses (`trimUses`, `SpaceRepository` option
 * `usesKeptMax`): the store answers for the uses dropped from it, on SQLite and on PostgreSQL. A
 * resend of a dropped use is a duplicate (an altered one a conflict), also after a restart, and a
 * subscription change back-dated over dropped uses records the same moves and thresholds as a Space
 * whose state kept every use.
 */
import {
  type InboundEvent,
  type SpaceCommand,
  type SpaceEvent,
  SPACE_SNAPSHOT_SCHEMA,
  cloneSpaceState,
  compactSpace,
  decideAll,
  decodeSpaceEvents,
  encodeSpaceEvent,
  foldSpace,
  initialSpaceState,
  snapshotOfSpace,
} from '@metering/domain';
import { type EventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onPostgresReadModels, onSqliteReadModels } from '../support/read-model-stores';

jest.setTimeout(60_000);
const NOW = Date.parse('2026-11-20T12:00:00Z');
const HOUR = 3_600_000;
const clock: Clock = { now: () => NOW };
const KEPT = 4;

/** Use i, 12 hours apart up to use 39 (20 days), later ones now. */
const use = (spaceId: string, i: number, generations = 1): InboundEvent => ({
  type: 'generation-performed',
  eventId: `use-${i}`,
  spaceId,
  userId: `user-${i % 3}`,
  feature: i % 2 ? 'ai_shadows' : 'ai_backgrounds',
  medium: 'image',
  generations,
  occurredAt: new Date(NOW - Math.max(0, 40 - i) * 12 * HOUR).toISOString(),
});

/** The Space's recorded events as (type, data) with its id replaced, to compare two Spaces' streams. */
async function recorded(store: EventStore, spaceId: string): Promise<string[]> {
  return (await store.readStream(`space-${spaceId}`)).map((e) => JSON.stringify({ type: e.type, data: e.data }).replaceAll(spaceId, 'SPACE'));
}

async function scenario(store: EventStore): Promise<void> {
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const small = new SpaceRepository(store, { usesKeptMax: KEPT });
  const tail = new IngestService(store, small, catalog, clock, systemIds);
  const whole = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  const both = async (events: (spaceId: string) => InboundEvent[]) => {
    const a = await tail.ingest(events('tail'));
    const b = await whole.ingest(events('whole'));
    expect(a.map((o) => o.outcome)).toEqual(b.map((o) => o.outcome));
    return a.map((o) => o.outcome);
  };
  await both((s) => [{ type: 'subscription-changed', eventId: 'pro', spaceId: s, plan: 'pro', cycle: 'monthly', effectiveAt: '2026-10-01T00:00:00Z' }]);
  for (let i = 0; i < 40; i += 5) expect(await both((s) => [0, 1, 2, 3, 4].map((k) => use(s, i + k)))).toEqual(Array(5).fill('accepted'));

  const state = await small.load('tail', NOW);
  expect(state.recent.size).toBeLessThanOrEqual(KEPT + 5);
  expect(state.keptFrom).toBeGreaterThan(NOW - 20 * 24 * HOUR);
  expect(state.recent.has('use-0')).toBe(false);
  expect((await new SpaceRepository(store).load('whole', NOW)).recent.size).toBe(40);

  // A resend of a dropped use: a duplicate; altered, a conflict; nothing recorded.
  expect(await both((s) => [use(s, 0), use(s, 1, 2)])).toEqual(['duplicate', 'conflict']);
  // After a restart (a new repository loads the snapshot or the stream, then trims).
  const restarted = new IngestService(store, new SpaceRepository(store, { usesKeptMax: KEPT }), catalog, clock, systemIds);
  expect((await restarted.ingest([use('tail', 2), use('tail', 3, 3)])).map((o) => o.outcome)).toEqual(['duplicate', 'conflict']);

  // Back-dated 15 days to a weekly enterprise plan: the uses since Nov 1 move into weekly periods.
  const limits = { ai_image_credits: 30, ai_video_credits: 10, batch_exports: 10 };
  expect(
    await both((s) => [{ type: 'subscription-changed', eventId: 'ent', spaceId: s, plan: 'enterprise', cycle: 'weekly', effectiveAt: new Date(NOW - 15 * 24 * HOUR).toISOString(), customLimits: limits }]),
  ).toEqual(['accepted']);
  expect(await both((s) => [use(s, 100), use(s, 101, 20)])).toEqual(['accepted', 'accepted']);
  const tailEvents = await recorded(store, 'tail');
  expect(tailEvents).toEqual(await recorded(store, 'whole'));
  const change = (await store.readStream('space-tail')).find((e) => e.type === 'SubscriptionChanged' && (e.data as { sourceEventId: string }).sourceEventId === 'ent');
  const data = (change as unknown as SpaceEvent & { type: 'SubscriptionChanged' }).data;
  expect(data.moves?.length).toBeGreaterThan(0);
  expect(data.memberMoves?.length).toBeGreaterThan(0);
  expect(tailEvents.filter((e) => e.includes('"ThresholdCrossed"')).length).toBeGreaterThan(0);
}

/**
 * A stream written before moves were recorded: a SubscriptionChanged without `moves` after more
 * uses than a state keeps, and a snapshot of a trimmed state before it. `evolve` gives such a change
 * its moves from the uses the state holds, so the load folds the stream again from its start.
 */
async function legacyScenario(store: EventStore): Promise<void> {
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const WINDOW = 35 * 24 * HOUR;
  const ctx = { now: NOW, catalog: catalog.catalog, eventId: (n: string) => systemIds.deterministic(n), correctionWindowMs: WINDOW };
  let state = initialSpaceState('legacy');
  const append = async (commands: SpaceCommand[], strip = false) => {
    const version = state.version;
    const r = decideAll(state, commands, { ...ctx, olderUses: [] });
    expect(r.decisions.map((d) => d.outcome)).toEqual(commands.map(() => 'accepted'));
    const events = r.events.map((e) => (strip && e.type === 'SubscriptionChanged' ? { ...e, data: { ...e.data, moves: undefined, memberMoves: undefined } } : e));
    await store.append('space-legacy', events.map(encodeSpaceEvent), version === 0 ? 'no_stream' : version - 1);
    state = r.state;
  };
  await append([{ type: 'ChangeSubscription', input: { eventId: 'pro', spaceId: 'legacy', plan: 'pro', cycle: 'monthly', effectiveAt: '2026-10-01T00:00:00Z' } }]);
  for (let i = 0; i < 30; i++) await append([{ type: 'RecordGeneration', input: use('legacy', i) as never }]);
  const trimmed = compactSpace(cloneSpaceState(state), NOW, WINDOW, true, KEPT);
  expect(trimmed.droppedRevs.size).toBeGreaterThan(0);
  await store.writeSnapshot({ streamName: 'space-legacy', revision: trimmed.version - 1, schema: SPACE_SNAPSHOT_SCHEMA, data: snapshotOfSpace(trimmed, WINDOW) });
  const limits = { ai_image_credits: 30, ai_video_credits: 10, batch_exports: 10 };
  await append([{ type: 'ChangeSubscription', input: { eventId: 'ent', spaceId: 'legacy', plan: 'enterprise', cycle: 'weekly', effectiveAt: new Date(NOW - 15 * 24 * HOUR).toISOString(), customLimits: limits } }], true);
  const stored = await store.readStream('space-legacy');
  expect((stored.at(-1)?.data as { moves?: unknown }).moves).toBeUndefined();

  const whole = compactSpace(foldSpace('legacy', decodeSpaceEvents(stored)), NOW, WINDOW, true, Number.POSITIVE_INFINITY);
  let loads = 0;
  const loaded = await new SpaceRepository(store, { usesKeptMax: KEPT, correctionWindowMs: WINDOW, onLoad: (l) => (loads += l.fromSnapshot ? 100 : 1) }).load('legacy', NOW);
  expect(loads).toBe(1); // folded from the stream's start, not from the trimmed snapshot
  expect(whole.periods.size).toBeGreaterThan(1);
  expect([...loaded.periods.entries()].sort((a, b) => a[0] - b[0])).toEqual([...whole.periods.entries()].sort((a, b) => a[0] - b[0]));
  expect(loaded.recent.size).toBeLessThanOrEqual(KEPT);
}

describe('a bounded tail of uses per Space state: the store answers for the uses dropped', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-uses-tail-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  test('SQLite', () => onSqliteReadModels(path.join(dir, 'metering.db'), (store) => scenario(store)));
  test('PostgreSQL (throw-away schema)', () => onPostgresReadModels('usestail', (store) => scenario(store)));
  test('a legacy change after a trimmed snapshot: the load folds the stream again (SQLite)', () => onSqliteReadModels(path.join(dir, 'legacy.db'), (store) => legacyScenario(store)));
});
