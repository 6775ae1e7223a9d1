import type { Pool } from './catalog/catalog';
import type { SpaceEvent } from './events';
import { type SpaceState, decide, foldSpace, initialSpaceState, reaches } from './space';
import { catalogWithVersion2 } from './testing/catalogs';
import {
  SPACE_ID,
  USER_ID,
  at,
  canonicalState,
  contextFor,
  defaultCatalog,
  exportBatch,
  generate,
  given,
  history,
  resetDue,
  subscribe,
} from './testing/given-when-then';
import { checkEntitlement, usageSourceOf, usageView } from './usage';

const PRO_MONTHLY = { ai_image_credits: 125, ai_video_credits: 25, batch_exports: 500 };
const PRO_WEEKLY = { ai_image_credits: 30, ai_video_credits: 6, batch_exports: 125 };
const MAX_WEEKLY = { ai_image_credits: 90, ai_video_credits: 18, batch_exports: 400 };

function crossed(
  pool: Pool,
  threshold: number,
  o: { used: number; limit: number; periodStart: string; periodEnd: string | null; causationId: string; occurredAt: string },
): SpaceEvent {
  return { type: 'ThresholdCrossed', data: { spaceId: SPACE_ID, pool, threshold, ...o } };
}

function rearmed(pool: Pool, threshold: number, o: { used: number; limit: number; periodStart: string; causationId: string }): SpaceEvent {
  return { type: 'ThresholdRearmed', data: { spaceId: SPACE_ID, pool, threshold, ...o } };
}

const viewAt = (state: SpaceState, now: string) => usageView(SPACE_ID, usageSourceOf(state), at(now), defaultCatalog());

// A pro weekly Space: the week runs Monday 09:00 to Monday 09:00.
const W0 = '2025-03-03T09:00:00.000Z';
const W1 = '2025-03-10T09:00:00.000Z';
const W2 = '2025-03-17T09:00:00.000Z';
const proWeekly = () => history([subscribe('pro', 'weekly', W0, { eventId: 'sub-pro-weekly' })]);

describe('Space decider', () => {
  describe('ChangeSubscription', () => {
    it('records the first subscription, re-anchored at the change, with the catalog limits', () => {
      given()
        .when(subscribe('pro', 'monthly', '2025-01-31T10:00:00Z', { eventId: 'sub-1' }), { now: '2025-01-31T10:00:00Z' })
        .then([
          {
            id: `${SPACE_ID}/subscription/sub-1`,
            type: 'SubscriptionChanged',
            data: {
              spaceId: SPACE_ID,
              sourceEventId: 'sub-1',
              plan: 'pro',
              cycle: 'monthly',
              effectiveAt: '2025-01-31T10:00:00.000Z',
              limits: PRO_MONTHLY,
              customLimits: null,
              catalogVersion: 1,
              anchorAt: '2025-01-31T10:00:00.000Z',
              resetFamily: 'monthly',
              reanchored: true,
              previous: null,
              decidedAt: '2025-01-31T10:00:00.000Z',
              moves: [],
              keepsUsage: true,
            },
          },
        ]);
    });

    it.each(['ultra', 'ultra_2x', 'ultra_5x', 'ultra_10x'] as const)('refuses %s weekly: the pair does not exist', (plan) => {
      given()
        .when(subscribe(plan, 'weekly', '2025-02-01T00:00:00Z'), { now: '2025-02-01T00:00:00Z' })
        .thenRejects('cycle', 'plan_cycle_exists');
    });

    it.each(['ultra', 'ultra_2x', 'ultra_5x', 'ultra_10x'] as const)('accepts %s monthly and yearly', (plan) => {
      for (const cycle of ['monthly', 'yearly'] as const)
        given()
          .when(subscribe(plan, cycle, '2025-02-01T00:00:00Z'), { now: '2025-02-01T00:00:00Z' })
          .thenMatch([{ type: 'SubscriptionChanged', data: { plan, cycle } }]);
    });

    it('records enterprise with the Space’s custom limits', () => {
      const customLimits = { ai_image_credits: 10_000, ai_video_credits: 2_000, batch_exports: 0 };
      given()
        .when(subscribe('enterprise', 'yearly', '2025-02-01T00:00:00Z', { customLimits }), { now: '2025-02-01T00:00:00Z' })
        .thenMatch([{ type: 'SubscriptionChanged', data: { plan: 'enterprise', limits: customLimits, customLimits, resetFamily: 'monthly' } }]);
    });

    it.each<[string, Record<string, unknown>, string, string]>([
      ['enterprise without customLimits', { plan: 'enterprise', customLimits: undefined }, 'customLimits', 'required_for_enterprise'],
      [
        'enterprise with a pool missing',
        { plan: 'enterprise', customLimits: { ai_image_credits: 1, ai_video_credits: 1 } },
        'customLimits',
        'required_for_enterprise',
      ],
      [
        'enterprise with a negative limit',
        { plan: 'enterprise', customLimits: { ai_image_credits: 1, ai_video_credits: -1, batch_exports: 1 } },
        'customLimits',
        'required_for_enterprise',
      ],
      ['customLimits on a catalog plan', { plan: 'pro', customLimits: PRO_MONTHLY }, 'customLimits', 'enterprise_only'],
      ['an unknown plan', { plan: 'gold' }, 'plan', 'known_plan'],
      ['an unknown cycle', { cycle: 'daily' }, 'cycle', 'known_cycle'],
      ['effectiveAt without a zone', { effectiveAt: '2025-02-01T00:00:00' }, 'effectiveAt', 'iso_instant'],
      ['an impossible effectiveAt', { effectiveAt: '2025-02-30T00:00:00Z' }, 'effectiveAt', 'iso_instant'],
    ])('refuses %s', (_name, over, field, rule) => {
      const command = subscribe('pro', 'monthly', '2025-02-01T00:00:00Z');
      Object.assign((command as { input: object }).input, over);
      given().when(command, { now: '2025-02-01T00:00:00Z' }).thenRejects(field, rule);
    });

    it('an upgrade keeps the period and its usage; only the limits change', () => {
      const h = history([
        subscribe('pro', 'monthly', '2025-01-15T00:00:00Z', { eventId: 'sub-pro' }),
        generate({ feature: 'virtual_model', generations: 10, occurredAt: '2025-01-18T00:00:00Z' }), // 50 credits
      ]);
      const { state } = given(h)
        .when(subscribe('max', 'monthly', '2025-01-20T00:00:00Z', { eventId: 'sub-max' }), { now: '2025-01-20T00:00:00Z' })
        .thenMatch([
          {
            type: 'SubscriptionChanged',
            data: { plan: 'max', anchorAt: '2025-01-15T00:00:00.000Z', reanchored: false, previous: { plan: 'pro', cycle: 'monthly' } },
          },
        ]);
      const view = viewAt(state, '2025-01-21T00:00:00Z');
      expect(view).toMatchObject({ plan: 'max', periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-02-15T00:00:00.000Z' });
      expect(view.pools.ai_image_credits).toMatchObject({ used: 50, limit: 375 });
    });

    it('monthly <-> yearly is not a cycle change for resets: same anchor, same period', () => {
      const h = history([subscribe('pro', 'monthly', '2025-01-15T00:00:00Z')]);
      given(h)
        .when(subscribe('pro', 'yearly', '2025-01-20T00:00:00Z'), { now: '2025-01-20T00:00:00Z' })
        .thenMatch([{ type: 'SubscriptionChanged', data: { anchorAt: '2025-01-15T00:00:00.000Z', reanchored: false, resetFamily: 'monthly' } }]);
    });

    it('a cycle change in the middle of a period keeps its usage; resets count from the change', () => {
      const h = history([
        subscribe('pro', 'monthly', '2025-01-15T00:00:00Z'),
        generate({ feature: 'ai_backgrounds', generations: 25, occurredAt: '2025-01-20T00:00:00Z' }), // 50 credits
      ]);
      const { state } = given(h)
        .when(subscribe('pro', 'weekly', '2025-01-25T12:00:00Z', { eventId: 'sub-weekly' }), { now: '2025-01-25T12:00:00Z' })
        .thenMatch([
          {
            type: 'SubscriptionChanged',
            data: { anchorAt: '2025-01-25T12:00:00.000Z', reanchored: true, resetFamily: 'weekly', limits: PRO_WEEKLY, keepsUsage: true },
          },
          // 50 of pro weekly's 30: the kept usage is over both thresholds, decided with the change, as for a downgrade
          { type: 'ThresholdCrossed', data: { threshold: 80, used: 50, limit: 30, periodStart: '2025-01-15T00:00:00.000Z', causationId: 'sub-weekly' } },
          { type: 'ThresholdCrossed', data: { threshold: 100, used: 50, limit: 30, periodStart: '2025-01-15T00:00:00.000Z', causationId: 'sub-weekly' } },
        ]);
      // The weekly period that the change starts keeps the interrupted month's start and its usage; it
      // ends a week after the change, and weekly resets count from the change.
      const view = viewAt(state, '2025-01-26T00:00:00Z');
      expect(view).toMatchObject({ cycle: 'weekly', periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-02-01T12:00:00.000Z' });
      expect(view.pools.ai_image_credits).toMatchObject({ used: 50, limit: 30 });
      expect(viewAt(state, '2025-02-01T12:00:00Z')).toMatchObject({ periodStart: '2025-02-01T12:00:00.000Z', periodEnd: '2025-02-08T12:00:00.000Z' });
      expect(viewAt(state, '2025-02-01T12:00:00Z').pools.ai_image_credits.used).toBe(0);
    });

    it('leaving free starts a new period at the change: free usage is not carried', () => {
      const h = history([generate({ feature: 'virtual_model', generations: 4, occurredAt: '2025-01-10T00:00:00Z' })]);
      const { state } = given(h)
        .when(subscribe('pro', 'monthly', '2025-01-20T08:00:00Z'), { now: '2025-01-20T08:00:00Z' })
        .thenMatch([{ type: 'SubscriptionChanged', data: { anchorAt: '2025-01-20T08:00:00.000Z', reanchored: true, previous: null } }]);
      const view = viewAt(state, '2025-01-21T00:00:00Z');
      expect(view).toMatchObject({ plan: 'pro', periodStart: '2025-01-20T08:00:00.000Z', nextResetAt: '2025-02-20T08:00:00.000Z' });
      expect(view.pools.ai_image_credits.used).toBe(0);
    });

    it('going back to free starts a period that never ends (at a renewal: a fresh one)', () => {
      const h = history([subscribe('pro', 'monthly', '2025-01-15T00:00:00Z')]);
      const { state } = given(h)
        .when(subscribe('free', 'monthly', '2025-03-15T00:00:00Z'), { now: '2025-03-15T00:00:00Z' })
        .thenMatch([{ type: 'SubscriptionChanged', data: { reanchored: true, resetFamily: 'never', anchorAt: '2025-03-15T00:00:00.000Z' } }]);
      expect(viewAt(state, '2027-01-01T00:00:00Z')).toMatchObject({
        plan: 'free',
        periodStart: '2025-03-15T00:00:00.000Z',
        periodEnd: null,
        nextResetAt: null,
      });
    });
  });

  describe('RecordGeneration', () => {
    const h = () => history([subscribe('pro', 'monthly', '2025-01-31T10:00:00Z')]);

    it('records catalog credits x generations in the period that contains occurredAt', () => {
      given(h())
        .when(generate({ eventId: 'g-1', feature: 'ghost_mannequin', generations: 2, occurredAt: '2025-02-10T00:00:00Z', batchId: 'b-9', platform: 'web' }), {
          now: '2025-02-10T00:00:01Z',
        })
        .then([
          {
            id: `${SPACE_ID}/generation/g-1`,
            type: 'GenerationRecorded',
            data: {
              spaceId: SPACE_ID,
              sourceEventId: 'g-1',
              userId: USER_ID,
              feature: 'ghost_mannequin',
              medium: 'image',
              generations: 2,
              occurredAt: '2025-02-10T00:00:00.000Z',
              batchId: 'b-9',
              platform: 'web',
              pool: 'ai_image_credits',
              unitCost: 3,
              credits: 6,
              catalogVersion: 1,
              periodStart: '2025-01-31T10:00:00.000Z',
              periodEnd: '2025-02-28T10:00:00.000Z',
            },
          },
        ]);
    });

    it('"generate more" (2 images) costs 2 generations', () => {
      given(h())
        .when(generate({ feature: 'virtual_model', generations: 2, occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-10T00:00:00Z' })
        .thenMatch([{ type: 'GenerationRecorded', data: { unitCost: 5, credits: 10 } }]);
    });

    it('video features draw from the video pool', () => {
      given(h())
        .when(generate({ feature: 'ai_video', medium: 'video', occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-10T00:00:00Z' })
        .thenMatch([{ type: 'GenerationRecorded', data: { pool: 'ai_video_credits', credits: 5 } }]);
    });

    it.each(['background_removal', 'white_background', 'templates'])('%s is recorded at 0 credits', (feature) => {
      given(h())
        .when(generate({ feature, generations: 3, occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-10T00:00:00Z' })
        .thenMatch([{ type: 'GenerationRecorded', data: { unitCost: 0, credits: 0 } }]);
    });

    it('prices with the catalog version in force at occurredAt, and history is never repriced', () => {
      // version 2 makes virtual_model cost 8 from June 1st
      const catalog = catalogWithVersion2('2025-06-01T00:00:00Z', (v) => (v.features.virtual_model.credits = 8));
      const now = '2025-06-02T00:00:00Z'; // both events are decided after the switch
      const before = given(h())
        .when(generate({ eventId: 'before', feature: 'virtual_model', generations: 2, occurredAt: '2025-05-31T23:59:59.999Z' }), { now, catalog })
        .thenMatch([{ type: 'GenerationRecorded', data: { catalogVersion: 1, unitCost: 5, credits: 10 } }]);
      const after = given(before.history)
        .when(generate({ eventId: 'after', feature: 'virtual_model', generations: 2, occurredAt: '2025-06-01T00:00:00Z' }), { now, catalog })
        .thenMatch([{ type: 'GenerationRecorded', data: { catalogVersion: 2, unitCost: 8, credits: 16 } }]);
      // folding needs no catalog: each event keeps its own price
      expect(after.state.periods.get(at('2025-05-31T10:00:00Z'))?.used.ai_image_credits).toBe(26);
    });

    it.each<[string, Record<string, unknown>, string, string]>([
      ['an unknown feature', { feature: 'ai_relight' }, 'feature', 'known_feature'],
      ['an inherited property name as feature', { feature: 'constructor' }, 'feature', 'known_feature'],
      ['a medium the feature does not produce', { feature: 'ai_video', medium: 'image' }, 'medium', 'matches_feature'],
      ['an image feature sent as video', { feature: 'virtual_model', medium: 'video' }, 'medium', 'matches_feature'],
      ['0 generations', { generations: 0 }, 'generations', 'positive_integer'],
      ['1.5 generations', { generations: 1.5 }, 'generations', 'positive_integer'],
      ['occurredAt without a zone', { occurredAt: '2025-02-10T00:00:00' }, 'occurredAt', 'iso_instant'],
      ['an empty eventId', { eventId: '' }, 'eventId', 'required'],
      ['another Space', { spaceId: 'space-2' }, 'spaceId', 'matches_stream'],
    ])('refuses %s', (_name, over, field, rule) => {
      given(h())
        .when(generate({ occurredAt: '2025-02-10T00:00:00Z', ...over }), { now: '2025-02-10T00:00:00Z' })
        .thenRejects(field, rule);
    });

    it('is a duplicate when its eventId was recorded with the same payload, a conflict with another', () => {
      const h2 = history([generate({ eventId: 'g-1', feature: 'ai_shadows', generations: 5, occurredAt: '2025-02-10T00:00:00Z' })], { after: h() });
      given(h2).when(generate({ eventId: 'g-1', feature: 'ai_shadows', generations: 5, occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-11T00:00:00Z' }).thenDuplicate();
      // the same instant written in another zone is the same fact
      given(h2).when(generate({ eventId: 'g-1', feature: 'ai_shadows', generations: 5, occurredAt: '2025-02-10T01:00:00+01:00' }), { now: '2025-02-11T00:00:00Z' }).thenDuplicate();
      // 250 credits of other usage under a recorded id: refused and named, never silently dropped
      given(h2).when(generate({ eventId: 'g-1', feature: 'virtual_model', generations: 50, occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-12T00:00:00Z' }).thenConflict();
      given(h2).when(generate({ eventId: 'g-1', feature: 'ai_shadows', generations: 5, occurredAt: '2025-02-10T00:00:00Z', userId: 'someone-else' }), { now: '2025-02-12T00:00:00Z' }).thenConflict();
    });

    it('a rejected input is not remembered: re-driven after the producer fixed it, it is accepted', () => {
      given(h())
        .when(generate({ eventId: 'g-7', feature: 'ai_video', medium: 'image', occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-10T00:00:00Z' })
        .thenRejects('medium', 'matches_feature');
      given(h())
        .when(generate({ eventId: 'g-7', feature: 'ai_video', medium: 'video', occurredAt: '2025-02-10T00:00:00Z' }), { now: '2025-02-20T00:00:00Z' })
        .thenMatch([{ type: 'GenerationRecorded', data: { sourceEventId: 'g-7' } }]);
    });

    it('decides the same ids for the same input (stable ids for consumer dedupe)', () => {
      const state = foldSpace(SPACE_ID, h());
      const c = generate({ eventId: 'g-1', feature: 'virtual_model', generations: 25, occurredAt: '2025-02-10T00:00:00Z' });
      const a = decide(state, c, contextFor({ now: '2025-02-10T00:00:00Z' }));
      const b = decide(state, c, contextFor({ now: '2025-02-10T00:00:00Z' }));
      expect(a.events.length).toBe(3); // recorded + 80 % + 100 %
      expect(b).toEqual(a);
      expect(new Set(a.events.map((e) => e.id)).size).toBe(3);
    });
  });

  describe('RecordBatchExport', () => {
    const h = () => proWeekly();

    it('counts the images in batch_exports', () => {
      given(h())
        .when(exportBatch({ eventId: 'x-1', batchId: 'b-1', images: 40, platform: 'web', occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-04T00:00:00Z' })
        .then([
          {
            type: 'BatchExportRecorded',
            data: {
              spaceId: SPACE_ID,
              sourceEventId: 'x-1',
              userId: USER_ID,
              batchId: 'b-1',
              images: 40,
              platform: 'web',
              occurredAt: '2025-03-04T00:00:00.000Z',
              catalogVersion: 1,
              periodStart: W0,
              periodEnd: W1,
            },
          },
        ]);
    });

    it.each<[string, number, 'accepted' | 'rejected']>([
      ['web', 100, 'accepted'],
      ['web', 101, 'rejected'],
      ['mobile', 250, 'accepted'],
      ['mobile', 251, 'rejected'],
    ])('on %s a batch of %d images is %s', (platform, images, outcome) => {
      const t = given(h()).when(exportBatch({ images, platform, occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-04T00:00:00Z' });
      if (outcome === 'rejected') t.thenRejects('images', 'per_batch_cap');
      else expect(t.decision.outcome).toBe('accepted');
    });

    it.each<[string, Record<string, unknown>, string, string]>([
      ['an unknown platform', { platform: 'fax' }, 'platform', 'known_platform'],
      ['0 images', { images: 0 }, 'images', 'positive_integer'],
      ['a bad occurredAt', { occurredAt: 'yesterday' }, 'occurredAt', 'iso_instant'],
    ])('refuses %s', (_name, over, field, rule) => {
      given(h())
        .when(exportBatch({ occurredAt: '2025-03-04T00:00:00Z', ...over }), { now: '2025-03-04T00:00:00Z' })
        .thenRejects(field, rule);
    });

    it('an AI feature used inside a batch costs AI credits, and the batch counts exports: separate pools', () => {
      const step1 = given(h())
        .when(generate({ feature: 'ai_shadows', generations: 3, batchId: 'b-1', occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-04T00:00:00Z' })
        .thenMatch([{ type: 'GenerationRecorded', data: { batchId: 'b-1', pool: 'ai_image_credits', credits: 3 } }]);
      expect(step1.state.periods.get(at(W0))?.used).toEqual({ ai_image_credits: 3, ai_video_credits: 0, batch_exports: 0 });
      const step2 = given(step1.history)
        .when(exportBatch({ batchId: 'b-1', images: 3, occurredAt: '2025-03-04T00:01:00Z' }), { now: '2025-03-04T00:01:00Z' })
        .thenMatch([{ type: 'BatchExportRecorded' }]);
      expect(step2.state.periods.get(at(W0))?.used).toEqual({ ai_image_credits: 3, ai_video_credits: 0, batch_exports: 3 });
    });

    it('is a duplicate when its eventId was recorded', () => {
      const h2 = history([exportBatch({ eventId: 'x-1', batchId: 'b-x', occurredAt: '2025-03-04T00:00:00Z' })], { after: h() });
      given(h2).when(exportBatch({ eventId: 'x-1', batchId: 'b-x', occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-05T00:00:00Z' }).thenDuplicate();
      given(h2).when(exportBatch({ eventId: 'x-1', batchId: 'b-x', images: 99, occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-05T00:00:00Z' }).thenConflict();
    });

    it('a subscription change is deduplicated by its eventId too; another plan under the same id is a conflict', () => {
      const sub = h().find((e) => e.type === 'SubscriptionChanged')!.data as { plan: 'pro'; cycle: 'weekly'; effectiveAt: string };
      given(h()).when(subscribe(sub.plan, sub.cycle, sub.effectiveAt, { eventId: 'sub-pro-weekly' }), { now: '2025-03-05T00:00:00Z' }).thenDuplicate();
      given(h()).when(subscribe('max', 'weekly', '2025-03-05T00:00:00Z', { eventId: 'sub-pro-weekly' }), { now: '2025-03-05T00:00:00Z' }).thenConflict();
    });
  });

  describe('thresholds (80 % and 100 %)', () => {
    const W0_TUE = '2025-03-04T00:00:00.000Z';

    it('80 % fires once, at the event that reaches it', () => {
      given(proWeekly())
        .when(generate({ eventId: 'g-80', feature: 'ai_backgrounds', generations: 12, occurredAt: W0_TUE }), { now: W0_TUE }) // 24 of 30
        .then([
          expect.objectContaining({ type: 'GenerationRecorded' }),
          crossed('ai_image_credits', 80, { used: 24, limit: 30, periodStart: W0, periodEnd: W1, causationId: 'g-80', occurredAt: W0_TUE }),
        ]);
    });

    it('just under 80 % fires nothing', () => {
      given(proWeekly())
        .when(generate({ feature: 'ai_shadows', generations: 23, occurredAt: W0_TUE }), { now: W0_TUE }) // 23 of 30 = 76.7 %
        .thenMatch([{ type: 'GenerationRecorded' }]);
    });

    it('does not fire 80 % again in the same period; 100 % fires when reached', () => {
      const h = history([subscribe('pro', 'weekly', W0, { eventId: 'sub-pro-weekly' }), generate({ eventId: 'g-80', feature: 'ai_backgrounds', generations: 12, occurredAt: W0_TUE })]);
      const step2 = given(h)
        .when(generate({ feature: 'ai_backgrounds', occurredAt: '2025-03-04T01:00:00Z' }), { now: '2025-03-04T01:00:00Z' }) // 26
        .thenMatch([{ type: 'GenerationRecorded' }]);
      const step3 = given(step2.history)
        .when(generate({ eventId: 'g-100', feature: 'ai_backgrounds', generations: 2, occurredAt: '2025-03-04T02:00:00Z' }), { now: '2025-03-04T02:00:00Z' }) // 30
        .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { threshold: 100, used: 30, limit: 30, causationId: 'g-100' } }]);
      // over the limit: recorded, no further notification
      given(step3.history)
        .when(generate({ feature: 'virtual_model', occurredAt: '2025-03-04T03:00:00Z' }), { now: '2025-03-04T03:00:00Z' })
        .thenMatch([{ type: 'GenerationRecorded', data: { credits: 5 } }]);
    });

    it('one event that jumps over both thresholds fires both, in the same decision, 80 then 100', () => {
      given(proWeekly())
        .when(generate({ eventId: 'g-big', feature: 'virtual_model', generations: 7, occurredAt: W0_TUE }), { now: W0_TUE }) // 35 of 30
        .then([
          expect.objectContaining({ type: 'GenerationRecorded', data: expect.objectContaining({ credits: 35 }) }),
          crossed('ai_image_credits', 80, { used: 35, limit: 30, periodStart: W0, periodEnd: W1, causationId: 'g-big', occurredAt: W0_TUE }),
          crossed('ai_image_credits', 100, { used: 35, limit: 30, periodStart: W0, periodEnd: W1, causationId: 'g-big', occurredAt: W0_TUE }),
        ]);
    });

    it('pools are separate: video and batch exports have their own thresholds', () => {
      given(proWeekly())
        .when(generate({ feature: 'ai_video', medium: 'video', occurredAt: W0_TUE }), { now: W0_TUE }) // 5 of 6
        .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { pool: 'ai_video_credits', threshold: 80, used: 5, limit: 6 } }]);
      given(proWeekly())
        .when(exportBatch({ images: 100, occurredAt: W0_TUE }), { now: W0_TUE }) // 100 of 125 = 80 %
        .thenMatch([{ type: 'BatchExportRecorded' }, { type: 'ThresholdCrossed', data: { pool: 'batch_exports', threshold: 80, used: 100, limit: 125 } }]);
    });

    it('any use of a zero limit reaches every threshold (free has no batch exports)', () => {
      given()
        .when(exportBatch({ images: 1, occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-04T00:00:00Z' })
        .thenMatch([
          { type: 'BatchExportRecorded', data: { periodStart: '1970-01-01T00:00:00.000Z', periodEnd: null } },
          { type: 'ThresholdCrossed', data: { pool: 'batch_exports', threshold: 80, used: 1, limit: 0, periodEnd: null } },
          { type: 'ThresholdCrossed', data: { pool: 'batch_exports', threshold: 100, used: 1, limit: 0 } },
        ]);
    });

    it('a zero-cost feature never fires, even on a zero limit', () => {
      const h = history([subscribe('enterprise', 'monthly', W0, { customLimits: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 } })]);
      given(h)
        .when(generate({ feature: 'background_removal', generations: 5, occurredAt: W0_TUE }), { now: W0_TUE })
        .thenMatch([{ type: 'GenerationRecorded', data: { credits: 0 } }]);
    });

    it('a new period re-arms every threshold (with or without its PeriodReset recorded)', () => {
      const h = history([subscribe('pro', 'weekly', W0, { eventId: 'sub-pro-weekly' }), generate({ feature: 'virtual_model', generations: 6, occurredAt: W0_TUE })]);
      expect(foldSpace(SPACE_ID, h).fired.size).toBe(2);
      const nextWeek = '2025-03-11T00:00:00.000Z';
      const expected = [
        { type: 'GenerationRecorded' as const },
        { type: 'ThresholdCrossed' as const, data: { threshold: 80, used: 30, periodStart: W1, periodEnd: W2 } },
        { type: 'ThresholdCrossed' as const, data: { threshold: 100, used: 30, periodStart: W1, periodEnd: W2 } },
      ];
      given(h).when(generate({ feature: 'virtual_model', generations: 6, occurredAt: nextWeek }), { now: nextWeek }).thenMatch(expected);
      const withReset = history([[resetDue(), nextWeek]], { after: h });
      expect(withReset.at(-1)).toMatchObject({ type: 'PeriodReset', data: { periodStart: W1 } });
      given(withReset).when(generate({ feature: 'virtual_model', generations: 6, occurredAt: nextWeek }), { now: nextWeek }).thenMatch(expected);
    });

    describe('subscription changes', () => {
      // 30 of pro weekly's 30 image credits used: 80 and 100 fired.
      const full = () =>
        history([subscribe('pro', 'weekly', W0, { eventId: 'sub-pro-weekly' }), generate({ feature: 'virtual_model', generations: 6, occurredAt: W0_TUE })]);
      const WED = '2025-03-05T00:00:00.000Z';

      it('an upgrade that takes usage back under re-arms those thresholds, and they fire again later', () => {
        const up = given(full())
          .when(subscribe('max', 'weekly', WED, { eventId: 'sub-max' }), { now: WED })
          .then([
            expect.objectContaining({
              type: 'SubscriptionChanged',
              data: expect.objectContaining({ limits: MAX_WEEKLY, reanchored: false, anchorAt: W0, previous: { plan: 'pro', cycle: 'weekly' } }),
            }),
            rearmed('ai_image_credits', 80, { used: 30, limit: 90, periodStart: W0, causationId: 'sub-max' }),
            rearmed('ai_image_credits', 100, { used: 30, limit: 90, periodStart: W0, causationId: 'sub-max' }),
          ]);
        expect(up.state.fired.size).toBe(0);
        const at72 = given(up.history)
          .when(generate({ eventId: 'g-72', feature: 'ai_backgrounds', generations: 21, occurredAt: '2025-03-05T01:00:00Z' }), { now: '2025-03-05T01:00:00Z' }) // 72 of 90
          .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { threshold: 80, used: 72, limit: 90, periodStart: W0, causationId: 'g-72' } }]);
        given(at72.history)
          .when(generate({ feature: 'ai_backgrounds', generations: 9, occurredAt: '2025-03-05T02:00:00Z' }), { now: '2025-03-05T02:00:00Z' }) // 90
          .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { threshold: 100, used: 90, limit: 90 } }]);
      });

      it('re-arms only the thresholds usage is now under', () => {
        const customLimits = { ai_image_credits: 36, ai_video_credits: 6, batch_exports: 125 }; // 30 of 36 = 83 %
        given(full())
          .when(subscribe('enterprise', 'weekly', WED, { eventId: 'sub-ent', customLimits }), { now: WED })
          .then([
            expect.objectContaining({ type: 'SubscriptionChanged' }),
            rearmed('ai_image_credits', 100, { used: 30, limit: 36, periodStart: W0, causationId: 'sub-ent' }),
          ]);
      });

      it('a downgrade that puts usage over a threshold fires it in the same decision', () => {
        const h = history([subscribe('max', 'weekly', W0), generate({ feature: 'virtual_model', generations: 6, occurredAt: W0_TUE })]); // 30 of 90
        expect(foldSpace(SPACE_ID, h).fired.size).toBe(0);
        given(h)
          .when(subscribe('pro', 'weekly', WED, { eventId: 'sub-down' }), { now: WED })
          .thenMatch([
            { type: 'SubscriptionChanged', data: { reanchored: false } },
            { type: 'ThresholdCrossed', data: { pool: 'ai_image_credits', threshold: 80, used: 30, limit: 30, causationId: 'sub-down', occurredAt: WED } },
            { type: 'ThresholdCrossed', data: { pool: 'ai_image_credits', threshold: 100, used: 30, limit: 30, causationId: 'sub-down' } },
          ]);
      });

      it('a re-anchoring change keeps the period and its usage: thresholds are re-evaluated as for an upgrade', () => {
        given(full())
          .when(subscribe('pro', 'monthly', WED, { eventId: 'sub-monthly' }), { now: WED })
          .then([
            expect.objectContaining({ type: 'SubscriptionChanged', data: expect.objectContaining({ reanchored: true, anchorAt: WED }) }),
            rearmed('ai_image_credits', 80, { used: 30, limit: 125, periodStart: W0, causationId: 'sub-monthly' }),
            rearmed('ai_image_credits', 100, { used: 30, limit: 125, periodStart: W0, causationId: 'sub-monthly' }),
          ]);
      });
    });
  });

  describe('late events', () => {
    // pro monthly from Jan 15; the current period (at Mar 20) is [Mar 15, Apr 15) with 10 image credits used.
    const h = () =>
      history([
        subscribe('pro', 'monthly', '2025-01-15T00:00:00Z'),
        generate({ feature: 'virtual_model', generations: 2, occurredAt: '2025-03-16T00:00:00Z' }),
      ]);
    const NOW = '2025-03-20T00:00:00Z';

    it('a late event counts in its closed period, does not touch the current one, and notifies nothing', () => {
      const { state } = given(h())
        .when(generate({ feature: 'virtual_model', generations: 30, occurredAt: '2025-02-20T00:00:00Z' }), { now: NOW }) // 150 of 125
        .then([
          expect.objectContaining({
            type: 'GenerationRecorded',
            data: expect.objectContaining({ credits: 150, periodStart: '2025-02-15T00:00:00.000Z', periodEnd: '2025-03-15T00:00:00.000Z' }),
          }),
        ]);
      expect(state.periods.get(at('2025-02-15T00:00:00Z'))?.used.ai_image_credits).toBe(150);
      const view = viewAt(state, NOW);
      expect(view.periodStart).toBe('2025-03-15T00:00:00.000Z');
      expect(view.pools.ai_image_credits).toMatchObject({ used: 10, limit: 125, over: false });
    });

    it('an event in the current period that arrives late still notifies', () => {
      given(h())
        .when(generate({ feature: 'virtual_model', generations: 20, occurredAt: '2025-03-15T00:00:00Z' }), { now: NOW }) // 10 + 100 = 110 of 125
        .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { threshold: 80, used: 110, periodStart: '2025-03-15T00:00:00.000Z' } }]);
    });
  });

  describe('usage over the limit', () => {
    it('is recorded, shown over 100 %, and the entitlement check then says no', () => {
      // an unknown Space is free: 25 image credits that never reset
      const { state } = given()
        .when(generate({ feature: 'virtual_model', generations: 6, occurredAt: '2025-03-04T00:00:00Z' }), { now: '2025-03-04T00:00:00Z' }) // 30 of 25
        .thenMatch([
          { type: 'GenerationRecorded', data: { credits: 30 } },
          { type: 'ThresholdCrossed', data: { threshold: 80 } },
          { type: 'ThresholdCrossed', data: { threshold: 100 } },
        ]);
      expect(viewAt(state, '2025-03-05T00:00:00Z').pools.ai_image_credits).toEqual({ used: 30, limit: 25, remaining: 0, percent: 120, over: true });
      const check = checkEntitlement(usageSourceOf(state), { kind: 'generation', feature: 'ai_shadows', generations: 1 }, at('2025-03-05T00:00:00Z'), defaultCatalog());
      expect(check).toMatchObject({ ok: true, answer: { allowed: false, reason: 'limit_reached', used: 30, limit: 25, remaining: 0 } });
      // the video pool is separate and still open
      const video = checkEntitlement(usageSourceOf(state), { kind: 'generation', feature: 'ai_video', generations: 1 }, at('2025-03-05T00:00:00Z'), defaultCatalog());
      expect(video).toMatchObject({ ok: true, answer: { allowed: true, reason: 'within_limit' } });
    });
  });

  describe('ResetDuePeriods', () => {
    const h = () => history([subscribe('pro', 'monthly', '2025-01-31T10:00:00Z')]);
    const reset = (periodStart: string, periodEnd: string, previousPeriodStart: string): SpaceEvent & { id: string } => ({
      id: `${SPACE_ID}/reset/${periodStart}`,
      type: 'PeriodReset',
      data: { spaceId: SPACE_ID, periodStart, periodEnd, previousPeriodStart, plan: 'pro', cycle: 'monthly', limits: PRO_MONTHLY },
    });

    it('after downtime, records ONE reset for the latest boundary, covering every missed one; then nothing', () => {
      const { history: h2 } = given(h())
        .when(resetDue(), { now: '2025-05-15T00:00:00Z' })
        .then([
          {
            ...reset('2025-04-30T10:00:00.000Z', '2025-05-31T10:00:00.000Z', '2025-03-31T10:00:00.000Z'),
            data: { ...reset('2025-04-30T10:00:00.000Z', '2025-05-31T10:00:00.000Z', '2025-03-31T10:00:00.000Z').data, boundariesCovered: 3, firstBoundary: '2025-02-28T10:00:00.000Z' },
          } as SpaceEvent & { id: string },
        ]);
      given(h2).when(resetDue(), { now: '2025-05-15T00:00:00Z' }).thenNothing();
      given(h2).when(resetDue(), { now: '2025-05-31T09:59:59.999Z' }).thenNothing();
      given(h2).when(resetDue(), { now: '2025-03-01T00:00:00Z' }).thenNothing(); // a clock going back
      const one = reset('2025-05-31T10:00:00.000Z', '2025-06-30T10:00:00.000Z', '2025-04-30T10:00:00.000Z');
      given(h2)
        .when(resetDue(), { now: '2025-05-31T10:00:00Z' })
        .then([{ ...one, data: { ...one.data, boundariesCovered: 1, firstBoundary: '2025-05-31T10:00:00.000Z' } } as SpaceEvent & { id: string }]);
    });

    it('a back-dated weekly subscription from 1970 records one reset, not thousands', () => {
      const old = history([subscribe('pro', 'weekly', '1970-01-05T00:00:00Z')]);
      const { events } = given(old).when(resetDue(), { now: '2025-05-15T00:00:00Z' }).thenMatch([
        { type: 'PeriodReset', data: { periodStart: '2025-05-12T00:00:00.000Z', firstBoundary: '1970-01-12T00:00:00.000Z', cycle: 'weekly' } },
      ]);
      expect((events[0].data as { boundariesCovered: number }).boundariesCovered).toBe((Date.parse("2025-05-12T00:00:00Z") - Date.parse("1970-01-12T00:00:00Z")) / (7 * 86_400_000) + 1);
    });

    it('a change that starts a new period is not a reset; resets follow the new anchor', () => {
      const h2 = history([subscribe('pro', 'weekly', '2025-03-05T12:00:00Z')], { after: h() });
      given(h2)
        .when(resetDue(), { now: '2025-03-20T00:00:00Z' })
        .thenMatch([
          // one event for the latest boundary: the monthly boundary of Feb 28, then (no reset at the
          // change itself, Mar 5 12:00) the weekly boundaries of Mar 12 and Mar 19
          {
            type: 'PeriodReset',
            data: {
              periodStart: '2025-03-19T12:00:00.000Z',
              periodEnd: '2025-03-26T12:00:00.000Z',
              previousPeriodStart: '2025-03-12T12:00:00.000Z',
              cycle: 'weekly',
              limits: PRO_WEEKLY,
              boundariesCovered: 3,
              firstBoundary: '2025-02-28T10:00:00.000Z',
            },
          },
        ]);
      // the scheduler running at each boundary records each one; the period the Feb 28 reset starts is
      // interrupted by the weekly change, which keeps it: it ends a week after the change
      given(h2)
        .when(resetDue(), { now: '2025-03-01T00:00:00Z' })
        .thenMatch([{ type: 'PeriodReset', data: { periodStart: '2025-02-28T10:00:00.000Z', periodEnd: '2025-03-12T12:00:00.000Z', cycle: 'monthly', boundariesCovered: 1 } }]);
    });

    it('free never resets', () => {
      given().when(resetDue(), { now: '2030-01-01T00:00:00Z' }).thenNothing();
      given(history([subscribe('free', 'monthly', '2025-01-01T00:00:00Z')])).when(resetDue(), { now: '2030-01-01T00:00:00Z' }).thenNothing();
    });
  });

  describe('an unknown Space', () => {
    it('is free, with zero usage and no reset', () => {
      const view = usageView('nobody', usageSourceOf(initialSpaceState('nobody')), at('2025-03-04T00:00:00Z'), defaultCatalog());
      expect(view).toEqual({
        spaceId: 'nobody',
        plan: 'free',
        cycle: 'monthly',
        periodStart: '1970-01-01T00:00:00.000Z',
        periodEnd: null,
        nextResetAt: null,
        pools: {
          ai_image_credits: { used: 0, limit: 25, remaining: 25, percent: 0, over: false },
          ai_video_credits: { used: 0, limit: 5, remaining: 5, percent: 0, over: false },
          batch_exports: { used: 0, limit: 0, remaining: 0, percent: 0, over: false },
        },
        asOf: '2025-03-04T00:00:00.000Z',
      });
    });
  });

  describe('evolve', () => {
    it('folds hand-written events without a catalog', () => {
      const state = foldSpace(SPACE_ID, [
        {
          type: 'GenerationRecorded',
          data: {
            spaceId: SPACE_ID, sourceEventId: 'e-1', userId: USER_ID, feature: 'something_retired', medium: 'image', generations: 1,
            occurredAt: '2025-03-04T00:00:00.000Z', batchId: null, platform: null, pool: 'ai_image_credits', unitCost: 42, credits: 42,
            catalogVersion: 7, periodStart: '1970-01-01T00:00:00.000Z', periodEnd: null,
          },
        },
        { type: 'ThresholdCrossed', data: { spaceId: SPACE_ID, pool: 'ai_image_credits', threshold: 80, periodStart: '1970-01-01T00:00:00.000Z', periodEnd: null, used: 42, limit: 25, causationId: 'e-1', occurredAt: '2025-03-04T00:00:00.000Z' } },
      ]);
      expect(canonicalState(state)).toEqual({
        spaceId: SPACE_ID,
        version: 2,
        seen: ['e-1'],
        recent: [{ id: 'e-1', at: Date.parse('2025-03-04T00:00:00.000Z'), pool: 'ai_image_credits', amount: 42, userId: USER_ID, feature: 'something_retired', fp: expect.any(Number), rev: 0 }],
        horizon: Number.NEGATIVE_INFINITY,
        keptFrom: Number.NEGATIVE_INFINITY,
        droppedRevs: [],
        timeline: [],
        periods: [{ start: 0, end: null, used: { ai_image_credits: 42, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 1 }],
        fired: ['0|ai_image_credits|80'],
        lastResetAt: null,
      });
    });
  });

  describe('reaches', () => {
    it.each([
      [24, 30, 80, true],
      [23, 30, 80, false],
      [30, 30, 100, true],
      [29, 30, 100, false],
      [1, 0, 100, true],
      [0, 0, 80, false],
      [0, 30, 80, false],
      [100, 125, 80, true],
      [99, 125, 80, false],
    ])('%d of %d reaches %d %%: %p', (used, limit, threshold, expected) => {
      expect(reaches(used, limit, threshold)).toBe(expected);
    });
  });
});
