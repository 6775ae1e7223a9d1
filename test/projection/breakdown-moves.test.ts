/**
 * The usage breakdown follows usage moves, on SQLite and PostgreSQL. A back-dated monthly -> weekly
 * change (decided on Feb 5, effective Jan 20) moves the uses of Feb 3 and 4 out of the month that
 * started on Feb 1 into the week that starts on Feb 3: the balances follow the recorded `moves`,
 * and the breakdown's rows (Space, period start, member, feature) follow `memberMoves`, so per
 * period the breakdown still adds up to the balances. Projected with pages of one event (the move
 * in a page of its own: a row left empty is deleted) and of 1,000 (uses and move in one page: their
 * sums merge), and rebuilt: the same rows each time.
 */
import type { EventStore } from '@metering/event-store';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';
import type { BreakdownReadModel, BreakdownRow } from '../../apps/metering/src/projection/breakdown/breakdown';
import { Projector } from '../../apps/metering/src/projection/projector';
import { clockedIngest, describeOnBothStores, liveThenRebuilt, quietProjectorLog } from '../support/read-model-stores';
import { expectBreakdownAddsUpToBalances } from '../support/breakdown-sums';
import { batchExported, generationPerformed, subscriptionChanged } from '../support/workload/events';

jest.setTimeout(60_000);
const SPACE = 'space-moves-1';
const at = (iso: string) => Date.parse(iso);

/** Ingests the scenario at its own instants (an injected clock) and returns what to compare. */
async function scenario(store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, pageSize: number) {
  const { send } = await clockedIngest(store);
  const projector = new Projector(store, balances, quietProjectorLog, 10, pageSize, [breakdown]);
  await send('2025-01-01T00:00:00Z', [subscriptionChanged({ eventId: 'sub-monthly', spaceId: SPACE, plan: 'pro', cycle: 'monthly', effectiveAt: '2025-01-01T00:00:00Z' })]);
  await send('2025-02-04T12:00:00Z', [
    generationPerformed({ eventId: 'u1', spaceId: SPACE, userId: 'ann', occurredAt: '2025-01-10T00:00:00Z' }, { feature: 'ai_shadows', medium: 'image', generations: 2 }),
    generationPerformed({ eventId: 'u2', spaceId: SPACE, userId: 'bob', occurredAt: '2025-02-03T00:00:00Z' }, { feature: 'ai_shadows', medium: 'image', generations: 1 }),
    batchExported({ eventId: 'u3', spaceId: SPACE, userId: 'ann', occurredAt: '2025-02-04T00:00:00Z' }, { batchId: 'b1', images: 4, platform: 'web' }),
    generationPerformed({ eventId: 'u4', spaceId: SPACE, userId: 'bob', occurredAt: '2025-02-01T06:00:00Z' }, { feature: 'ai_shadows', medium: 'image', generations: 3 }),
  ]);
  await send('2025-02-05T00:00:00Z', [subscriptionChanged({ eventId: 'sub-weekly', spaceId: SPACE, plan: 'pro', cycle: 'weekly', effectiveAt: '2025-01-20T00:00:00Z' })]);
  await projector.catchUp();
  const rows = async (start: string) =>
    (await breakdown.forPeriod(SPACE, at(start))).map((r: BreakdownRow) => ({ userId: r.userId, feature: r.feature, used: r.used, events: r.events })).sort((a, b) => `${a.userId}|${a.feature}`.localeCompare(`${b.userId}|${b.feature}`));
  return {
    jan: await rows('2025-01-01T00:00:00Z'),
    feb1: await rows('2025-02-01T00:00:00Z'),
    weekOfJan27: await rows('2025-01-27T00:00:00Z'),
    weekOfFeb3: await rows('2025-02-03T00:00:00Z'),
    usage: await balances.usage(SPACE),
    dump: (await breakdown.dump()).rows,
  };
}

function expectFollowed(r: Awaited<ReturnType<typeof scenario>>): void {
  const L = (img: number, exp = 0) => ({ ai_image_credits: img, ai_video_credits: 0, batch_exports: exp });
  // January keeps its use; Feb 1 - Feb 3 (the week of Jan 27) keeps bob's use of Feb 1; the uses
  // of Feb 3 and 4 moved to the week of Feb 3; the month of Feb 1 no longer exists.
  expect(r.jan).toEqual([{ userId: 'ann', feature: 'ai_shadows', used: L(2), events: 1 }]);
  expect(r.feb1).toEqual([]);
  expect(r.weekOfJan27).toEqual([{ userId: 'bob', feature: 'ai_shadows', used: L(3), events: 1 }]);
  expect(r.weekOfFeb3).toEqual([
    { userId: 'ann', feature: 'batch_export', used: L(0, 4), events: 1 },
    { userId: 'bob', feature: 'ai_shadows', used: L(1), events: 1 },
  ]);
  // per period, the breakdown adds up to the balances
  expect(expectBreakdownAddsUpToBalances(r.dump.filter((x) => x.spaceId === SPACE), r.usage)).toBe(3);
}

describeOnBothStores('the breakdown follows usage moves', 'bdmoves', (store, balances, breakdown, pageSize) =>
  liveThenRebuilt(store, balances, breakdown, () => scenario(store, balances, breakdown, pageSize), expectFollowed),
);
