/**
 * The usage breakdown follows usage moves: a back-dated subscription change that moves usage
 * between periods records the move per member and feature (`SubscriptionChanged.memberMoves`,
 * computed with `moves` by `changeMoves`, from the same moved uses), so a breakdown kept by
 * (period, member, feature) can follow it without keeping uses.
 */
import fc from 'fast-check';
import type { Cycle, Limits, Plan } from './catalog/catalog';
import { POOLS } from './catalog/catalog';
import type { MemberMove, SpaceEvent, SubscriptionChangedData } from './events';
import { BATCH_EXPORT_FEATURE, MEMBER_MOVES_MAX, SPACE_SNAPSHOT_SCHEMA, changeMoves, decideAll, foldSpace, snapshotOfSpace, spaceFromSnapshot } from './space';
import { SPACE_ID, at, contextFor, exportBatch, generate, history, isoOf, subscribe } from './testing/given-when-then';
import { periodAt } from './timeline';

const changeOf = (events: readonly SpaceEvent[], eventId: string): SubscriptionChangedData =>
  events.find((e): e is Extract<SpaceEvent, { type: 'SubscriptionChanged' }> => e.type === 'SubscriptionChanged' && e.data.sourceEventId === eventId)!.data;

const limits = (ai_image_credits: number, ai_video_credits = 0, batch_exports = 0): Limits => ({ ai_image_credits, ai_video_credits, batch_exports });

/** The breakdown a read model keeps: usage events at their recorded period, then each change's member moves. */
function breakdownOf(events: readonly SpaceEvent[]): Map<string, { used: Limits; events: number }> {
  const rows = new Map<string, { used: Limits; events: number }>();
  const add = (period: string | number, userId: string, feature: string, used: Limits, n: number, sign: 1 | -1) => {
    const key = JSON.stringify([Date.parse(String(typeof period === 'number' ? isoOf(period) : period)), userId, feature]);
    const row = rows.get(key) ?? { used: limits(0), events: 0 };
    for (const pool of POOLS) row.used[pool] += sign * used[pool];
    row.events += sign * n;
    if (row.events === 0) rows.delete(key);
    else rows.set(key, row);
  };
  for (const e of events) {
    if (e.type === 'GenerationRecorded') add(e.data.periodStart, e.data.userId, e.data.feature, { ...limits(0), [e.data.pool]: e.data.credits }, 1, 1);
    else if (e.type === 'BatchExportRecorded') add(e.data.periodStart, e.data.userId, BATCH_EXPORT_FEATURE, limits(0, 0, e.data.images), 1, 1);
    else if (e.type === 'SubscriptionChanged')
      for (const m of e.data.memberMoves ?? []) {
        add(m.from, m.userId, m.feature, m.used, m.usageEvents, -1);
        add(m.to, m.userId, m.feature, m.used, m.usageEvents, 1);
      }
  }
  return rows;
}

describe('member moves', () => {
  // weekly from Jan 1; uses in the week [Jan 15, Jan 22) by two members; a monthly change from Jan 20
  // decided on Jan 22 moves them into the period it starts (Jan 15 - Feb 20).
  const steps = [
    subscribe('pro', 'weekly', '2025-01-01T00:00:00Z', { eventId: 'w' }),
    generate({ eventId: 'g1', userId: 'ann', feature: 'ai_shadows', generations: 3, occurredAt: '2025-01-21T00:00:00Z' }),
    generate({ eventId: 'g2', userId: 'ann', feature: 'ai_shadows', generations: 2, occurredAt: '2025-01-21T01:00:00Z' }),
    generate({ eventId: 'g3', userId: 'bob', feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-21T02:00:00Z' }),
    exportBatch({ eventId: 'b1', userId: 'bob', images: 7, occurredAt: '2025-01-21T03:00:00Z' }),
    generate({ eventId: 'g4', userId: 'bob', feature: 'ai_shadows', generations: 1, occurredAt: '2025-01-14T00:00:00Z' }),
    [subscribe('pro', 'monthly', '2025-01-20T00:00:00Z', { eventId: 'm' }), '2025-01-22T00:00:00Z'] as [ReturnType<typeof subscribe>, string],
  ];

  it('a late weekly -> monthly change that only moves the end of the week it keeps moves no breakdown row', () => {
    const change = changeOf(history(steps), 'm');
    // the week [Jan 15, Jan 22) now ends on Feb 20: same start, so every row stays where it is
    expect(change.moves).toEqual([{ periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-02-20T00:00:00.000Z', used: limits(0), usageEvents: 0 }]);
    expect(change.memberMoves).toBeUndefined();
  });

  it('a late monthly -> weekly change records what each member and feature moved, and adds up to the period moves', () => {
    // monthly from Jan 1; uses on Jan 10 (period Jan 1 - Feb 1) and Feb 3 and 4 (Feb 1 - Mar 1);
    // weekly from Jan 20, decided Feb 5: the interrupted January keeps its usage (it now ends Jan
    // 27), the weeks start on Jan 27 and Feb 3, so the February uses move to the week of Feb 3.
    const events = history([
      subscribe('pro', 'monthly', '2025-01-01T00:00:00Z', { eventId: 'a' }),
      generate({ eventId: 'u1', userId: 'ann', feature: 'ai_shadows', generations: 2, occurredAt: '2025-01-10T00:00:00Z' }),
      generate({ eventId: 'u2', userId: 'bob', feature: 'ai_shadows', generations: 1, occurredAt: '2025-02-03T00:00:00Z' }),
      exportBatch({ eventId: 'u3', userId: 'ann', images: 4, occurredAt: '2025-02-04T00:00:00Z' }),
      [subscribe('pro', 'weekly', '2025-01-20T00:00:00Z', { eventId: 'b' }), '2025-02-05T00:00:00Z'],
    ]);
    const change = changeOf(events, 'b');
    const feb1 = '2025-02-01T00:00:00.000Z';
    const feb3 = '2025-02-03T00:00:00.000Z';
    expect(change.memberMoves).toEqual([
      { from: feb1, to: feb3, userId: 'ann', feature: BATCH_EXPORT_FEATURE, used: limits(0, 0, 4), usageEvents: 1 },
      { from: feb1, to: feb3, userId: 'bob', feature: 'ai_shadows', used: limits(1), usageEvents: 1 },
    ]);
    // per period start, the member moves' net equals the period moves'
    const net = new Map<string, { used: Limits; usageEvents: number }>();
    const bump = (start: string, used: Limits, n: number, sign: number) => {
      const m = net.get(start) ?? { used: limits(0), usageEvents: 0 };
      for (const pool of POOLS) m.used[pool] += sign * used[pool];
      m.usageEvents += sign * n;
      net.set(start, m);
    };
    for (const m of change.memberMoves ?? []) {
      bump(m.from, m.used, m.usageEvents, -1);
      bump(m.to, m.used, m.usageEvents, 1);
    }
    const moves = new Map((change.moves ?? []).map((m) => [m.periodStart, { used: m.used, usageEvents: m.usageEvents }]));
    const nonZero = (m: Map<string, { used: Limits; usageEvents: number }>) => new Map([...m].filter(([, v]) => v.usageEvents !== 0 || POOLS.some((p) => v.used[p] !== 0)));
    expect(nonZero(net)).toEqual(nonZero(moves));
    expect([...nonZero(moves).keys()]).toEqual([feb1, feb3]);
    // and a breakdown that follows them has the February uses in the week of Feb 3
    expect(breakdownOf(events)).toEqual(
      new Map([
        [JSON.stringify([Date.parse('2025-01-01T00:00:00Z'), 'ann', 'ai_shadows']), { used: limits(2), events: 1 }],
        [JSON.stringify([Date.parse(feb3), 'bob', 'ai_shadows']), { used: limits(1), events: 1 }],
        [JSON.stringify([Date.parse(feb3), 'ann', BATCH_EXPORT_FEATURE]), { used: limits(0, 0, 4), events: 1 }],
      ]),
    );
  });

  it('a use restored from a snapshot without members moves in the balances, not in the member moves', () => {
    const before = history([
      subscribe('pro', 'monthly', '2025-01-01T00:00:00Z', { eventId: 'a' }),
      generate({ eventId: 'u2', userId: 'bob', feature: 'ai_shadows', generations: 1, occurredAt: '2025-02-03T00:00:00Z' }),
      exportBatch({ eventId: 'u3', userId: 'ann', images: 4, occurredAt: '2025-02-04T00:00:00Z' }),
    ]);
    const state = foldSpace(SPACE_ID, before);
    const windowMs = 35 * 86_400_000;
    const body = snapshotOfSpace(state, windowMs);
    const roundTrip = spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA, body, windowMs)!;
    expect(roundTrip.recent).toEqual(state.recent);
    expect(roundTrip.recent.get('u2')).toMatchObject({ userId: 'bob', feature: 'ai_shadows' });
    expect(roundTrip.recent.get('u3')).toMatchObject({ userId: 'ann', feature: BATCH_EXPORT_FEATURE });
    // a body as written before members were kept: each use's tuple without its last two fields
    const parsed = JSON.parse(body) as { recent: unknown[][] };
    const old = JSON.stringify({ ...parsed, recent: parsed.recent.map((u) => u.slice(0, 5)) });
    const restored = spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA, old, windowMs)!;
    expect([...restored.recent.values()].every((u) => u.userId === undefined && u.feature === undefined)).toBe(true);
    const weekly = subscribe('pro', 'weekly', '2025-01-20T00:00:00Z', { eventId: 'b' });
    // (decideAll decides in place: one decision per state)
    const decided = (s: typeof state) => decideAll(s, [weekly], contextFor({ now: '2025-02-05T00:00:00Z' })).events[0].data as SubscriptionChangedData;
    const fromOld = decided(restored);
    const fromNew = decided(roundTrip);
    expect(fromOld.moves).toEqual(fromNew.moves);
    expect(fromOld.moves?.some((m) => m.usageEvents !== 0)).toBe(true);
    expect(fromOld.memberMoves).toBeUndefined();
    expect(fromNew.memberMoves?.length).toBe(2);
  });

  it(`a change that would move the usage of more than ${MEMBER_MOVES_MAX} (member, feature) pairs records its period moves only`, () => {
    const usesOf = (members: number) => history([
      subscribe('pro', 'monthly', '2025-01-01T00:00:00Z', { eventId: 'a' }),
      ...Array.from({ length: members }, (_, i) => generate({ eventId: `u-${i}`, userId: `member-${i}`, feature: 'ai_shadows', generations: 1, occurredAt: '2025-02-03T00:00:00Z' })),
    ]);
    const weekly = subscribe('pro', 'weekly', '2025-01-20T00:00:00Z', { eventId: 'b' });
    const decided = (members: number) => decideAll(foldSpace(SPACE_ID, usesOf(members)), [weekly], contextFor({ now: '2025-02-05T00:00:00Z' })).events[0].data as SubscriptionChangedData;
    const atBound = decided(MEMBER_MOVES_MAX);
    expect(atBound.memberMoves?.length).toBe(MEMBER_MOVES_MAX);
    // well inside KurrentDB's append budget (960 KiB) at the bound
    expect(JSON.stringify(atBound).length).toBeLessThan(600 * 1024);
    const over = decided(MEMBER_MOVES_MAX + 1);
    expect(over.memberMoves).toBeUndefined();
    expect(over.moves?.find((m) => m.periodStart === '2025-02-03T00:00:00.000Z')?.usageEvents).toBe(MEMBER_MOVES_MAX + 1);
  });

  it('changeMoves leaves out of the member moves uses whose period start does not change', () => {
    const timeline = foldSpace(SPACE_ID, history([subscribe('pro', 'monthly', '2025-01-01T00:00:00Z', { eventId: 'a' })])).timeline;
    expect(changeMoves(timeline, timeline, [{ at: at('2025-01-05T00:00:00Z'), pool: 'ai_image_credits', amount: 3, userId: 'ann', feature: 'x' }])).toEqual({ moves: [], memberMoves: [] });
  });
});

const CHANGES: [Plan, Cycle][] = [
  ['pro', 'monthly'],
  ['pro', 'weekly'],
  ['max', 'yearly'],
  ['free', 'monthly'],
  ['ultra', 'weekly'],
];

describe('property: the breakdown kept by member moves', () => {
  it('per period equals the balances, and per member and feature equals attribution from scratch over the final timeline', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...CHANGES), fc.integer({ min: -20 * 24, max: 24 })), { minLength: 1, maxLength: 5 }),
        fc.array(fc.tuple(fc.constantFrom('ann', 'bob', 'cy'), fc.constantFrom('ai_shadows', 'ai_backgrounds', 'batch'), fc.integer({ min: 0, max: 20 * 24 }), fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 12 }),
        (changes, uses) => {
          // every use and change inside the corrections window of the decisions (Jan 21 - Jan 22)
          const steps: [ReturnType<typeof subscribe>, number][] = [[subscribe('pro', 'monthly', '2025-01-01T00:00:00Z', { eventId: 's-0' }), at('2025-01-01T00:00:00Z')]];
          uses.forEach(([userId, feature, h, n], i) => {
            const occurredAt = isoOf(at('2025-01-01T00:00:00Z') + h * 3_600_000);
            const cmd =
              feature === 'batch'
                ? exportBatch({ eventId: `u-${i}`, userId, images: n, occurredAt })
                : generate({ eventId: `u-${i}`, userId, feature, generations: n, occurredAt });
            steps.push([cmd, at('2025-01-21T00:00:00Z')]);
          });
          changes.forEach(([[plan, cycle], h], i) => steps.push([subscribe(plan, cycle, isoOf(at('2025-01-20T00:00:00Z') + h * 3_600_000), { eventId: `s-${i + 1}` }), at('2025-01-22T00:00:00Z')]));
          let events: SpaceEvent[];
          try {
            events = history(steps);
          } catch {
            return; // a step refused (e.g. batch exports on free): not this property's concern
          }
          const folded = foldSpace(SPACE_ID, events);
          const rows = breakdownOf(events);
          // per period: the rows add up to the balances' period usage
          const perPeriod = new Map<number, { used: Limits; events: number }>();
          for (const [key, row] of rows) {
            const start = (JSON.parse(key) as [number])[0];
            const p = perPeriod.get(start) ?? { used: limits(0), events: 0 };
            for (const pool of POOLS) p.used[pool] += row.used[pool];
            p.events += row.events;
            perPeriod.set(start, p);
          }
          const balances = new Map([...folded.periods].filter(([, p]) => p.usageEvents > 0).map(([k, p]) => [k, { used: p.used, events: p.usageEvents }]));
          expect(perPeriod).toEqual(balances);
          // per member and feature: each use in the period of the final timeline containing it
          const fromScratch = breakdownOf(
            events.map((e) =>
              e.type === 'GenerationRecorded' || e.type === 'BatchExportRecorded'
                ? ({ ...e, data: { ...e.data, periodStart: isoOf(periodAt(folded.timeline, Date.parse(e.data.occurredAt)).start) } } as SpaceEvent)
                : e.type === 'SubscriptionChanged'
                  ? ({ ...e, data: { ...e.data, memberMoves: [] } } as SpaceEvent)
                  : e,
            ),
          );
          expect(rows).toEqual(fromScratch);
        },
      ),
      { numRuns: 300 },
    );
  });
});
