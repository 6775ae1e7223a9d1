/**
 * No fresh pool for free (issue 13, rule 4): a change of reset family in the middle of a period (a
 * cycle flip, joining or leaving free) keeps that period's usage; the new anchor only moves the
 * reset dates. A fresh period comes from a reset (or a change at a renewal), never from a flip.
 */
import fc from 'fast-check';
import type { Cycle, Plan } from './catalog/catalog';
import type { SpaceEvent, SubscriptionChangedData } from './events';
import { decideAll, foldSpace, initialSpaceState } from './space';
import { SPACE_ID, at, contextFor, generate, given, history, isoOf, resetDue, subscribe } from './testing/given-when-then';
import { periodAt } from './timeline';
import { usageSourceOf, usageView } from './usage';
import { defaultCatalog } from './testing/given-when-then';

const view = (events: readonly SpaceEvent[], t: string) => usageView(SPACE_ID, usageSourceOf(foldSpace(SPACE_ID, events)), at(t), defaultCatalog());
const images = (events: readonly SpaceEvent[], t: string) => view(events, t).pools.ai_image_credits;

// pro monthly from Jan 15; 100 of 125 image credits used on Jan 16 (the period Jan 15 - Feb 15).
const proMonthlyUsed = () =>
  history([
    subscribe('pro', 'monthly', '2025-01-15T00:00:00Z', { eventId: 's-1' }),
    generate({ eventId: 'g-1', feature: 'ai_backgrounds', generations: 50, occurredAt: '2025-01-16T00:00:00Z' }),
  ]);

describe('a cycle flip within a period hands out no fresh pool', () => {
  it('monthly -> weekly -> monthly keeps the usage in the period that each change starts', () => {
    const flipped = history(
      [subscribe('pro', 'weekly', '2025-01-17T00:00:00Z', { eventId: 's-2' }), subscribe('pro', 'monthly', '2025-01-18T00:00:00Z', { eventId: 's-3' })],
      { after: proMonthlyUsed() },
    );
    // back on monthly, anchored at the last change (resets on the 18th), the 100 credits still count
    expect(view(flipped, '2025-01-19T00:00:00Z')).toMatchObject({ cycle: 'monthly', periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-02-18T00:00:00.000Z' });
    expect(images(flipped, '2025-01-19T00:00:00Z')).toMatchObject({ used: 100, limit: 125 });
    // the next reset (the new anchor's) gives the fresh pool
    expect(view(flipped, '2025-02-18T00:00:00Z')).toMatchObject({ periodStart: '2025-02-18T00:00:00.000Z' });
    expect(images(flipped, '2025-02-18T00:00:00Z').used).toBe(0);
  });

  it('weekly -> monthly -> weekly: the same', () => {
    const events = history([
      subscribe('pro', 'weekly', '2025-03-03T09:00:00Z', { eventId: 's-1' }),
      generate({ eventId: 'g-1', feature: 'virtual_model', generations: 5, occurredAt: '2025-03-04T00:00:00Z' }), // 25 of 30
      subscribe('pro', 'monthly', '2025-03-05T00:00:00Z', { eventId: 's-2' }),
      subscribe('pro', 'weekly', '2025-03-06T00:00:00Z', { eventId: 's-3' }),
    ]);
    expect(images(events, '2025-03-07T00:00:00Z')).toMatchObject({ used: 25, limit: 30 });
    expect(view(events, '2025-03-07T00:00:00Z')).toMatchObject({ periodStart: '2025-03-03T09:00:00.000Z', periodEnd: '2025-03-13T00:00:00.000Z' });
  });

  it('the thresholds already fired in the period stay fired: the flip notifies nobody again', () => {
    const events = history(
      [generate({ eventId: 'g-2', feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-16T01:00:00Z' })], // 102 of 125: 80 % fires
      { after: proMonthlyUsed() },
    );
    expect(events.filter((e) => e.type === 'ThresholdCrossed')).toHaveLength(1);
    // monthly -> yearly keeps the anchor (same family): no change of period at all; monthly -> weekly
    // (30 credits) puts 102 over 100 %: fires 100 % once, and not 80 % again
    given(events)
      .when(subscribe('pro', 'weekly', '2025-01-17T00:00:00Z', { eventId: 's-2' }), { now: '2025-01-17T00:00:00Z' })
      .thenMatch([
        { type: 'SubscriptionChanged', data: { reanchored: true, keepsUsage: true } },
        { type: 'ThresholdCrossed', data: { threshold: 100, used: 102, limit: 30, periodStart: '2025-01-15T00:00:00.000Z', causationId: 's-2' } },
      ]);
  });

  it('a change at a renewal starts a fresh period (a reset would have started one anyway)', () => {
    const events = history([subscribe('pro', 'weekly', '2025-02-15T00:00:00Z', { eventId: 's-2' })], { after: proMonthlyUsed() });
    expect(view(events, '2025-02-16T00:00:00Z')).toMatchObject({ cycle: 'weekly', periodStart: '2025-02-15T00:00:00.000Z', periodEnd: '2025-02-22T00:00:00.000Z' });
    expect(images(events, '2025-02-16T00:00:00Z').used).toBe(0);
  });

  it('a late event in the kept part counts in the running period', () => {
    const events = history([subscribe('pro', 'weekly', '2025-01-20T00:00:00Z', { eventId: 's-2' })], { after: proMonthlyUsed() });
    // 100 of 30 already: both thresholds fired at the change; a late use of Jan 17 adds to the same period
    const late = given(events)
      .when(generate({ eventId: 'g-late', feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-17T00:00:00Z' }), { now: '2025-01-21T00:00:00Z' })
      .thenMatch([{ type: 'GenerationRecorded', data: { periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-01-27T00:00:00.000Z' } }]);
    expect(images(late.history, '2025-01-21T00:00:00Z')).toMatchObject({ used: 102, limit: 30 });
  });
});

describe('free -> paid -> free -> paid hands out no fresh pool', () => {
  it('leaving a paid plan for free mid-period keeps the usage; paying again keeps it too', () => {
    const toFree = history([subscribe('free', 'monthly', '2025-01-20T00:00:00Z', { eventId: 's-2' })], { after: proMonthlyUsed() });
    // free never resets: the period that started Jan 15 goes on, with the 100 credits (over free's 25)
    expect(view(toFree, '2025-03-01T00:00:00Z')).toMatchObject({ plan: 'free', periodStart: '2025-01-15T00:00:00.000Z', periodEnd: null });
    expect(images(toFree, '2025-03-01T00:00:00Z')).toMatchObject({ used: 100, limit: 25 });
    const backToPro = history([subscribe('pro', 'monthly', '2025-01-22T00:00:00Z', { eventId: 's-3' })], { after: toFree });
    expect(view(backToPro, '2025-01-23T00:00:00Z')).toMatchObject({ plan: 'pro', periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-02-22T00:00:00.000Z' });
    expect(images(backToPro, '2025-01-23T00:00:00Z')).toMatchObject({ used: 100, limit: 125 });
  });

  it('a Space that never paid starts its first paid period fresh (the free pool is not carried)', () => {
    const events = history([
      generate({ eventId: 'g-free', feature: 'virtual_model', generations: 4, occurredAt: '2025-01-10T00:00:00Z' }),
      subscribe('pro', 'monthly', '2025-01-20T00:00:00Z', { eventId: 's-1' }),
    ]);
    expect(view(events, '2025-01-21T00:00:00Z')).toMatchObject({ periodStart: '2025-01-20T00:00:00.000Z' });
    expect(images(events, '2025-01-21T00:00:00Z').used).toBe(0);
  });

  it('going free at a renewal, then paying again later, starts fresh: the paid period was used up by a reset', () => {
    const events = history(
      [subscribe('free', 'monthly', '2025-02-15T00:00:00Z', { eventId: 's-2' }), subscribe('pro', 'monthly', '2025-03-01T00:00:00Z', { eventId: 's-3' })],
      { after: proMonthlyUsed() },
    );
    expect(view(events, '2025-03-02T00:00:00Z')).toMatchObject({ periodStart: '2025-03-01T00:00:00.000Z' });
    expect(images(events, '2025-03-02T00:00:00Z').used).toBe(0);
  });
});

describe('changes recorded before the rule keep their meaning', () => {
  it('a SubscriptionChanged without keepsUsage starts a fresh period at its effectiveAt', () => {
    const events = history([subscribe('pro', 'weekly', '2025-01-20T00:00:00Z', { eventId: 's-2' })], { after: proMonthlyUsed() }).map((e) => {
      if (e.type !== 'SubscriptionChanged') return e;
      const { keepsUsage: _rule, ...data } = e.data as SubscriptionChangedData;
      return { ...e, data } as SpaceEvent;
    });
    expect(view(events, '2025-01-21T00:00:00Z')).toMatchObject({ periodStart: '2025-01-20T00:00:00.000Z' });
    expect(images(events, '2025-01-21T00:00:00Z').used).toBe(0);
  });
});

describe('properties', () => {
  const FAMILY_CHANGES: [Plan, Cycle][] = [
    ['pro', 'weekly'],
    ['pro', 'monthly'],
    ['max', 'weekly'],
    ['max', 'yearly'],
    ['free', 'monthly'],
    ['ultra', 'monthly'],
  ];

  it('any sequence of plan and cycle changes within 6 days of a use keeps every credit used until a reset', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...FAMILY_CHANGES), fc.integer({ min: 1, max: 6 * 24 })), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 60 }),
        (changes, generations) => {
          // pro monthly from Jan 15, a use on Jan 16, then the changes hour by hour (sorted), all before Jan 22:
          // no anchor's first boundary comes before Jan 23, so no reset falls inside
          let state = initialSpaceState(SPACE_ID);
          const run = (command: Parameters<typeof decideAll>[1][number], now: number) => {
            const r = decideAll(state, [command], contextFor({ now }));
            expect(r.decisions[0].outcome).toBe('accepted');
            state = r.state;
          };
          run(subscribe('pro', 'monthly', '2025-01-15T00:00:00Z', { eventId: 's-0' }), at('2025-01-15T00:00:00Z'));
          run(generate({ eventId: 'g', feature: 'ai_backgrounds', generations, occurredAt: '2025-01-16T00:00:00Z' }), at('2025-01-16T00:00:00Z'));
          const hours = [...new Set(changes.map(([, h]) => h))].sort((a, b) => a - b);
          hours.forEach((h, i) => {
            const [plan, cycle] = changes[i % changes.length][0];
            const t = at('2025-01-16T00:00:00Z') + h * 3_600_000;
            run(subscribe(plan, cycle, isoOf(t), { eventId: `s-${i + 1}` }), t);
          });
          const now = at('2025-01-22T12:00:00Z');
          const period = periodAt(state.timeline, now);
          expect(period.start).toBe(at('2025-01-15T00:00:00Z'));
          expect(state.periods.get(period.start)?.used.ai_image_credits).toBe(2 * generations);
          // and a reset still comes: the period ends, and the next one starts empty
          if (period.end !== null) {
            expect(period.end).toBeGreaterThan(now);
            expect(state.periods.get(periodAt(state.timeline, period.end).start)).toBeUndefined();
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('back-dated changes in any order: the recorded moves give the periods of the final timeline', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...FAMILY_CHANGES), fc.integer({ min: -20 * 24, max: 24 })), { minLength: 1, maxLength: 6 }), (changes) => {
        // decided on Jan 21 (every use is inside the corrections window), effective from Dec 31 to Jan 21
        const steps = [
          subscribe('pro', 'monthly', '2025-01-15T00:00:00Z', { eventId: 's-0' }),
          generate({ eventId: 'g-1', feature: 'ai_backgrounds', generations: 3, occurredAt: '2025-01-16T00:00:00Z' }),
          ...changes.map(([[plan, cycle], h], i) => [subscribe(plan, cycle, isoOf(at('2025-01-20T00:00:00Z') + h * 3_600_000), { eventId: `s-${i + 1}` }), at('2025-01-21T00:00:00Z')] as const),
          [generate({ eventId: 'g-2', feature: 'ai_backgrounds', generations: 2, occurredAt: '2025-01-21T01:00:00Z' }), at('2025-01-21T01:00:00Z')] as const,
          [resetDue(), at('2025-02-10T00:00:00Z')] as const,
        ];
        const events = history(steps.map((s) => (Array.isArray(s) ? [s[0], s[1]] : s)) as Parameters<typeof history>[0]);
        // usage attributed by the recorded moves equals usage attributed from scratch over the final timeline
        const folded = foldSpace(SPACE_ID, events);
        const fromScratch = new Map<number, number>();
        for (const e of events) {
          if (e.type !== 'GenerationRecorded') continue;
          const p = periodAt(folded.timeline, Date.parse(e.data.occurredAt));
          fromScratch.set(p.start, (fromScratch.get(p.start) ?? 0) + e.data.credits);
        }
        const recorded = new Map([...folded.periods].map(([k, v]) => [k, v.used.ai_image_credits] as const).filter(([, v]) => v !== 0));
        expect(recorded).toEqual(fromScratch);
      }),
      { numRuns: 200 },
    );
  });
});
