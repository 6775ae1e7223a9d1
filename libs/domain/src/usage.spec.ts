import type { SpaceEvent } from './events';
import { foldSpace } from './space';
import { catalogWithVersion2 } from './testing/catalogs';
import { SPACE_ID, at, defaultCatalog, exportBatch, generate, history, subscribe } from './testing/given-when-then';
import { type EntitlementRequest, checkEntitlement, percentOf, poolUsage, usageSourceOf, usageView } from './usage';

// pro weekly from Monday 09:00: 30 image / 6 video credits, 125 batch exports.
const W0 = '2025-03-03T09:00:00Z';
const TUE = '2025-03-04T00:00:00Z';
const proWeeklyWith = (...usage: Parameters<typeof history>[0]): SpaceEvent[] => history([subscribe('pro', 'weekly', W0), ...usage]);

const check = (events: SpaceEvent[], request: EntitlementRequest, now = TUE, catalog = defaultCatalog()) =>
  checkEntitlement(usageSourceOf(foldSpace(SPACE_ID, events)), request, at(now), catalog);

const answer = (events: SpaceEvent[], request: EntitlementRequest, now = TUE, catalog = defaultCatalog()) => {
  const r = check(events, request, now, catalog);
  if (!r.ok) throw new Error(`rejected: ${JSON.stringify(r.rejection)}`);
  return r.answer;
};

describe('entitlement check', () => {
  it('allows a spend within the remaining credits', () => {
    const events = proWeeklyWith(generate({ feature: 'ai_shadows', generations: 10, occurredAt: TUE })); // 10 of 30
    expect(answer(events, { kind: 'generation', feature: 'virtual_model', generations: 4 })).toMatchObject({
      allowed: true,
      reason: 'within_limit',
      pool: 'ai_image_credits',
      cost: 20,
      used: 10,
      limit: 30,
      remaining: 20,
      catalogVersion: 1,
      periodEnd: '2025-03-10T09:00:00.000Z',
    });
  });

  it('says no when the cost is more than what remains (insufficient_remaining)', () => {
    const events = proWeeklyWith(generate({ feature: 'ai_shadows', generations: 26, occurredAt: TUE })); // 26 of 30
    expect(answer(events, { kind: 'generation', feature: 'virtual_model', generations: 1 })).toMatchObject({
      allowed: false,
      reason: 'insufficient_remaining',
      cost: 5,
      remaining: 4,
    });
  });

  it.each([
    ['exactly at the limit', 30],
    ['over the limit', 35],
  ])('says no once the limit is reached (%s)', (_n, credits) => {
    const events = proWeeklyWith(generate({ feature: 'virtual_model', generations: credits / 5, occurredAt: TUE }));
    expect(answer(events, { kind: 'generation', feature: 'ai_shadows', generations: 1 })).toMatchObject({
      allowed: false,
      reason: 'limit_reached',
      used: credits,
      limit: 30,
      remaining: 0,
    });
  });

  it('always allows a free feature, at cost 0, even with the limit reached', () => {
    const events = proWeeklyWith(generate({ feature: 'virtual_model', generations: 7, occurredAt: TUE }));
    expect(answer(events, { kind: 'generation', feature: 'background_removal', generations: 3 })).toMatchObject({
      allowed: true,
      reason: 'free_feature',
      cost: 0,
    });
  });

  it('checks video against the video pool', () => {
    const events = proWeeklyWith(generate({ feature: 'virtual_model', generations: 7, occurredAt: TUE })); // image pool over
    expect(answer(events, { kind: 'generation', feature: 'ai_video', generations: 1 })).toMatchObject({
      allowed: true,
      pool: 'ai_video_credits',
      cost: 5,
      limit: 6,
    });
  });

  it('counts only the current period (a new week starts from zero)', () => {
    const events = proWeeklyWith(generate({ feature: 'virtual_model', generations: 6, occurredAt: TUE }));
    expect(answer(events, { kind: 'generation', feature: 'virtual_model', generations: 6 }, '2025-03-10T09:00:00Z')).toMatchObject({
      allowed: true,
      used: 0,
      periodEnd: '2025-03-17T09:00:00.000Z',
    });
  });

  it('prices with the catalog version in force now', () => {
    const catalog = catalogWithVersion2('2025-03-04T12:00:00Z', (v) => (v.features.virtual_model.credits = 8));
    const events = proWeeklyWith();
    expect(answer(events, { kind: 'generation', feature: 'virtual_model', generations: 1 }, '2025-03-04T11:59:59Z', catalog)).toMatchObject({ cost: 5, catalogVersion: 1 });
    expect(answer(events, { kind: 'generation', feature: 'virtual_model', generations: 1 }, '2025-03-04T12:00:00Z', catalog)).toMatchObject({ cost: 8, catalogVersion: 2 });
  });

  describe('batches', () => {
    it.each([
      ['web', 100, true, 'within_limit'],
      ['web', 101, false, 'per_batch_cap'],
      ['mobile', 250, false, 'insufficient_remaining'], // 250 > 125 remaining on pro weekly
      ['mobile', 251, false, 'per_batch_cap'],
    ] as const)('on %s, %d images: allowed %p (%s)', (platform, images, allowed, reason) => {
      expect(answer(proWeeklyWith(), { kind: 'batch', platform, images })).toMatchObject({ allowed, reason, pool: 'batch_exports', cost: images });
    });

    it('free has no batch exports: limit reached from the start', () => {
      expect(answer([], { kind: 'batch', platform: 'web', images: 1 })).toMatchObject({ allowed: false, reason: 'limit_reached', limit: 0 });
    });

    it('counts exported images already used in the period', () => {
      const events = proWeeklyWith(exportBatch({ images: 100, occurredAt: TUE }));
      expect(answer(events, { kind: 'batch', platform: 'web', images: 26 })).toMatchObject({ allowed: false, reason: 'insufficient_remaining', remaining: 25 });
      expect(answer(events, { kind: 'batch', platform: 'web', images: 25 })).toMatchObject({ allowed: true, reason: 'within_limit' });
    });
  });

  it.each<[string, EntitlementRequest, string, string]>([
    ['an unknown feature', { kind: 'generation', feature: 'ai_relight', generations: 1 }, 'feature', 'known_feature'],
    ['a prototype property as feature', { kind: 'generation', feature: 'toString', generations: 1 }, 'feature', 'known_feature'],
    ['0 generations', { kind: 'generation', feature: 'ai_shadows', generations: 0 }, 'generations', 'positive_integer'],
    ['an unknown platform', { kind: 'batch', platform: 'fax', images: 1 }, 'platform', 'known_platform'],
    ['0 images', { kind: 'batch', platform: 'web', images: 0 }, 'batchImages', 'positive_integer'],
  ])('rejects %s', (_n, request, field, rule) => {
    const r = check(proWeeklyWith(), request);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.rejection).toMatchObject({ field, rule });
  });
});

describe('usage view', () => {
  it('shows used, limit, percent and the next reset of the current period', () => {
    const events = proWeeklyWith(
      generate({ feature: 'ai_shadows', generations: 10, occurredAt: TUE }),
      generate({ feature: 'ai_video', medium: 'video', generations: 2, occurredAt: TUE }),
      exportBatch({ images: 50, occurredAt: TUE }),
    );
    const view = usageView(SPACE_ID, usageSourceOf(foldSpace(SPACE_ID, events)), at('2025-03-05T00:00:00Z'), defaultCatalog());
    expect(view).toEqual({
      spaceId: SPACE_ID,
      plan: 'pro',
      cycle: 'weekly',
      periodStart: '2025-03-03T09:00:00.000Z',
      periodEnd: '2025-03-10T09:00:00.000Z',
      nextResetAt: '2025-03-10T09:00:00.000Z',
      pools: {
        ai_image_credits: { used: 10, limit: 30, remaining: 20, percent: 33.33, over: false },
        ai_video_credits: { used: 10, limit: 6, remaining: 0, percent: 166.67, over: true },
        batch_exports: { used: 50, limit: 125, remaining: 75, percent: 40, over: false },
      },
      asOf: '2025-03-05T00:00:00.000Z',
    });
  });

  it.each([
    [0, 0, 0],
    [3, 0, 100],
    [24, 30, 80],
    [1, 3, 33.33],
    [2, 3, 66.67],
    [150, 125, 120],
  ])('percentOf(%d, %d) = %d', (used, limit, percent) => {
    expect(percentOf(used, limit)).toBe(percent);
  });

  it('poolUsage: remaining never goes negative; over only past the limit', () => {
    expect(poolUsage(30, 30)).toEqual({ used: 30, limit: 30, remaining: 0, percent: 100, over: false });
    expect(poolUsage(31, 30)).toMatchObject({ remaining: 0, over: true });
  });
});
