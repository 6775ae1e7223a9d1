/**
 * A subscription change back-dated beyond the corrections window to the very start of a settled
 * period (`SubscriptionChanged.clearsPeriod`), on SQLite and PostgreSQL. Enterprise weekly from
 * Wed Jan 1; ann uses 20 video credits on Jan 23 (the period Jan 22 - Jan 29: 80 % and 100 % of 10
 * fire). On Mar 5 (window from Jan 29) billing says: free from Jan 22. The free period starts at
 * the settled period's own start, so both have one key; the settled period's usage, thresholds and
 * breakdown rows do not count in the free period. Bob then uses 2 image credits. Every read model
 * holds what the domain's fold holds (the free period: bob's use alone, no threshold fired), with
 * projection pages of one event and of 1,000, and again after a rebuild; so does the entitlement
 * view that held the Space before the change.
 */
import { type Limits, type SpaceEvent, foldSpace, spaceStreamName } from '@metering/domain';
import type { EventStore } from '@metering/event-store';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';
import type { BreakdownReadModel } from '../../apps/metering/src/projection/breakdown/breakdown';
import { EntitlementView } from '../../apps/metering/src/projection/entitlement-view';
import { Projector } from '../../apps/metering/src/projection/projector';
import { clockedIngest, describeOnBothStores, liveThenRebuilt, quietProjectorLog } from '../support/read-model-stores';
import { generationPerformed, subscriptionChanged } from '../support/workload/events';

jest.setTimeout(60_000);
const SPACE = 'space-settled-1';
const at = (iso: string) => Date.parse(iso);
const JAN22 = at('2025-01-22T00:00:00Z');
const MAR5 = at('2025-03-05T00:00:00Z');

async function scenario(store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, pageSize: number) {
  const { send } = await clockedIngest(store);
  const limits = { ai_image_credits: 100, ai_video_credits: 10, batch_exports: 10 };
  await send('2025-01-01T00:00:00Z', [subscriptionChanged({ eventId: 'ent', spaceId: SPACE, plan: 'enterprise', cycle: 'weekly', effectiveAt: '2025-01-01T00:00:00Z', customLimits: limits })]);
  await send('2025-01-23T00:00:00Z', [generationPerformed({ eventId: 'ann-video', spaceId: SPACE, userId: 'ann', occurredAt: '2025-01-23T00:00:00Z' }, { feature: 'ai_video', medium: 'video', generations: 4 })]);
  const projector = new Projector(store, balances, quietProjectorLog, 10, pageSize, [breakdown]);
  await projector.catchUp();
  // The entitlement view holds the Space from Jan 23 (its period of Jan 22 with ann's 20 credits)
  // and follows the store's feed from there: the change's clear reaches its entry through the fold.
  const view = new EntitlementView(store, balances, { maxSpaces: 8, pollMs: 60_000, batchSize: 7, now: () => MAR5 });
  await view.start();
  let fromView: Limits;
  try {
    expect((await view.source(SPACE, at('2025-01-23T00:00:00Z'))).usedIn(JAN22)).toMatchObject({ ai_video_credits: 20 });
    await send('2025-03-05T00:00:00Z', [subscriptionChanged({ eventId: 'free', spaceId: SPACE, plan: 'free', cycle: 'weekly', effectiveAt: '2025-01-22T00:00:00Z' })]);
    await send('2025-03-05T00:00:00Z', [generationPerformed({ eventId: 'bob-image', spaceId: SPACE, userId: 'bob', occurredAt: '2025-03-05T00:00:00Z' }, { feature: 'ai_backgrounds', medium: 'image', generations: 1 })]);
    view.noteLocalAppend(await store.headPosition());
    fromView = { ...(await view.source(SPACE, MAR5)).usedIn(JAN22) };
    expect(view.viewStats().hits).toBeGreaterThan(0);
  } finally {
    await view.stop();
  }
  await projector.catchUp();
  const stream = await store.readStream(spaceStreamName(SPACE));
  return {
    stream,
    fromView,
    state: foldSpace(SPACE, stream.map((e) => ({ type: e.type, data: e.data }) as unknown as SpaceEvent)),
    usage: await balances.usage(SPACE),
    balances: await balances.dump(),
    freePeriod: await breakdown.forPeriod(SPACE, JAN22),
    watch: await breakdown.watchList(100),
    breakdown: await breakdown.dump(),
  };
}

function expectCleared(r: Awaited<ReturnType<typeof scenario>>): void {
  const change = r.stream.find((e) => e.type === 'SubscriptionChanged' && (e.data as { plan: string }).plan === 'free')!;
  expect(change.data).toMatchObject({ effectiveAt: '2025-01-22T00:00:00.000Z', clearsPeriod: '2025-01-22T00:00:00.000Z' });
  // the settled period's thresholds fired (and stay in the stream)
  expect(r.stream.filter((e) => e.type === 'ThresholdCrossed').map((e) => (e.data as { threshold: number }).threshold)).toEqual([80, 100]);
  // the domain: the free period holds bob's use alone, and no threshold is fired in it
  const free = r.state.periods.get(JAN22)!;
  expect(free).toMatchObject({ end: null, used: { ai_image_credits: 2, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 1 });
  expect([...r.state.fired]).toEqual([]);
  // the entitlement view (the check's source): the same usage in the running free period
  expect(r.fromView).toEqual(free.used);
  // the balances: the same
  expect(r.usage.filter((u) => u.periodStart === JAN22)).toEqual([{ spaceId: SPACE, periodStart: JAN22, periodEnd: null, used: free.used, usageEvents: 1 }]);
  expect(r.balances.thresholds.filter((t) => t.spaceId === SPACE && t.state === 'fired')).toEqual([]);
  // the breakdown: bob's row alone in the free period, and the Space is not on the watch list
  expect(r.freePeriod.map((b) => [b.userId, b.feature, b.used, b.events])).toEqual([['bob', 'ai_backgrounds', free.used, 1]]);
  expect(r.watch.filter((w) => w.spaceId === SPACE)).toEqual([]);
}

describeOnBothStores('a change back-dated to the start of a settled period clears its record in every read model', 'settled', (store, balances, breakdown, pageSize) =>
  liveThenRebuilt(store, balances, breakdown, () => scenario(store, balances, breakdown, pageSize), expectCleared),
);
