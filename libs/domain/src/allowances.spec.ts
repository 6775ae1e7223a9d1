/**
 * Allowances follow the catalog (issue 13): a catalog version that changes a plan's allowance
 * reaches every Space on that plan from its effectiveFrom; a raise applies at once to the running
 * period, a cut from each Space's next period; thresholds are re-evaluated when it takes effect,
 * once; enterprise custom limits are untouched.
 */
import fc from 'fast-check';
import { POOLS } from './catalog/catalog';
import { DAY_MS } from './period';
import { decideAll, foldSpace } from './space';
import { catalogWithVersion2 } from './testing/catalogs';
import { SPACE_ID, at, generate, given, history, reevaluateAllowances, subscribe } from './testing/given-when-then';
import { allowanceDuring, limitsFor, periodAt } from './timeline';
import { usageSourceOf, usageView } from './usage';

// pro monthly: 125 image credits by default; version 2 (from Feb 20) doubles them, or cuts them to 60
const raise = catalogWithVersion2('2025-02-20T00:00:00Z', (v) => (v.plans.pro.monthly!.ai_image_credits = 250));
const cut = catalogWithVersion2('2025-02-20T00:00:00Z', (v) => (v.plans.pro.monthly!.ai_image_credits = 60));
const proMonthly = (catalog = raise) => history([subscribe('pro', 'monthly', '2025-01-15T00:00:00Z')], { catalog });
const limitAt = (events: ReturnType<typeof proMonthly>, t: string, catalog = raise) =>
  usageView(SPACE_ID, usageSourceOf(foldSpace(SPACE_ID, events)), at(t), catalog).pools.ai_image_credits.limit;

describe('allowance changes reach subscribers', () => {
  it('a raise applies at once to the running period of an existing subscriber', () => {
    expect(limitAt(proMonthly(), '2025-02-19T23:59:59Z')).toBe(125);
    expect(limitAt(proMonthly(), '2025-02-20T00:00:00Z')).toBe(250); // the period started Feb 15
    expect(limitAt(proMonthly(), '2025-04-01T00:00:00Z')).toBe(250);
  });

  it('a cut applies from the next period: nobody loses credits mid-period', () => {
    expect(limitAt(proMonthly(cut), '2025-02-25T00:00:00Z', cut)).toBe(125); // period Feb 15 - Mar 15
    expect(limitAt(proMonthly(cut), '2025-03-15T00:00:00Z', cut)).toBe(60);
  });

  it('a closed period keeps the allowance it had', () => {
    const events = proMonthly();
    const jan = periodAt(foldSpace(SPACE_ID, events).timeline, at('2025-01-20T00:00:00Z'));
    expect(limitsFor(foldSpace(SPACE_ID, events).timeline, jan, at('2025-06-01T00:00:00Z'), raise).limits.ai_image_credits).toBe(125);
  });

  it('enterprise custom limits are untouched by the catalog', () => {
    const both = catalogWithVersion2('2025-02-20T00:00:00Z', (v) => {
      v.plans.pro.monthly!.ai_image_credits = 250;
    });
    const events = history([subscribe('enterprise', 'monthly', '2025-01-15T00:00:00Z', { customLimits: { ai_image_credits: 7, ai_video_credits: 1, batch_exports: 3 } })], { catalog: both });
    expect(usageView(SPACE_ID, usageSourceOf(foldSpace(SPACE_ID, events)), at('2025-03-01T00:00:00Z'), both).pools.ai_image_credits.limit).toBe(7);
  });

  it('usage decided after a raise is measured against the raised allowance (thresholds too)', () => {
    // 110 of 125 credits used before the raise: 80 % fired
    const events = history([[generate({ eventId: 'g-1', feature: 'ai_backgrounds', generations: 55, occurredAt: '2025-02-16T00:00:00Z' }), '2025-02-16T00:00:00Z']], { after: proMonthly(), catalog: raise });
    expect(events.filter((e) => e.type === 'ThresholdCrossed').map((e) => (e.data as { threshold: number }).threshold)).toEqual([80]);
    // after the raise: 110 of 250 is under 80 %: the scheduler re-arms 80 % (once, for version 2)
    const { history: h2 } = given(events).when(reevaluateAllowances(2), { now: '2025-02-20T00:01:00Z', catalog: raise }).thenMatch([
      { type: 'ThresholdRearmed', data: { pool: 'ai_image_credits', threshold: 80, used: 110, limit: 250 } },
    ]);
    given(h2).when(reevaluateAllowances(2), { now: '2025-02-21T00:00:00Z', catalog: raise }).thenNothing();
    // 200 of 250: 80 % fires again, under the new allowance
    given(h2)
      .when(generate({ eventId: 'g-2', feature: 'ai_backgrounds', generations: 45, occurredAt: '2025-02-22T00:00:00Z' }), { now: '2025-02-22T00:00:00Z', catalog: raise })
      .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { threshold: 80, used: 200, limit: 250 } }]);
  });

  it('a version not yet in force re-evaluates nothing', () => {
    given(proMonthly()).when(reevaluateAllowances(2), { now: '2025-02-19T00:00:00Z', catalog: raise }).thenNothing();
  });

  it('property: the allowance at t is never below any version in force since the period began, and equals the latest once a period starts after every change', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 500 }), fc.integer({ min: -60, max: 60 }), fc.integer({ min: 0, max: 90 }), (a, b, startDay, lenDays) => {
        const catalog = catalogWithVersion2('2025-02-20T00:00:00Z', (v) => (v.plans.pro.monthly!.ai_image_credits = b));
        catalog.versions[0].plans.pro.monthly!.ai_image_credits = a;
        const from = at('2025-02-20T00:00:00Z') + startDay * DAY_MS;
        const t = from + lenDays * DAY_MS;
        const got = allowanceDuring(catalog, 'pro', 'monthly', from, t)!;
        const change = at('2025-02-20T00:00:00Z');
        if (from >= change) expect(got.ai_image_credits).toBe(b);
        else if (t < change) expect(got.ai_image_credits).toBe(a);
        else expect(got.ai_image_credits).toBe(Math.max(a, b));
        for (const pool of POOLS) expect(got[pool]).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });

  it('decisions after a raise never use a lower limit than before it (a user never loses credits)', () => {
    const state = foldSpace(SPACE_ID, proMonthly());
    const before = limitsFor(state.timeline, periodAt(state.timeline, at('2025-02-19T00:00:00Z')), at('2025-02-19T00:00:00Z'), cut).limits.ai_image_credits;
    const after = limitsFor(state.timeline, periodAt(state.timeline, at('2025-02-21T00:00:00Z')), at('2025-02-21T00:00:00Z'), cut).limits.ai_image_credits;
    expect(after).toBeGreaterThanOrEqual(before);
    expect(decideAll(state, [reevaluateAllowances(2)], { now: at('2025-02-21T00:00:00Z'), catalog: cut, eventId: (n) => n }).events).toEqual([]);
  });
});
