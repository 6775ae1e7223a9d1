/**
 * Rules added after review: usage is attributed by occurredAt to the period of the CURRENT
 * timeline, whatever order subscriptions and usage arrive in (they come on different topics);
 * anchors follow from the set of subscription changes alone; a dead letter for a feature or
 * platform that the catalog lacked is accepted once a new version knows it; usage dated too far in
 * the future is refused.
 */
import { foldSpace, decideAll, type SpaceCommand, type SpaceState } from './space';
import { usageView, usageSourceOf } from './usage';
import { catalogWithVersion2 } from './testing/catalogs';
import { SPACE_ID, at, contextFor, defaultCatalog, exportBatch, generate, given, history, resetDue, subscribe } from './testing/given-when-then';

function run(commands: SpaceCommand[], now: string, catalog = defaultCatalog()): SpaceState {
  return decideAll(foldSpace(SPACE_ID, []), commands, contextFor({ now, catalog })).state;
}

describe('attribution by occurredAt over the current timeline', () => {
  const sub = subscribe('pro', 'monthly', '2025-03-10T10:00:00Z');
  const use = generate({ eventId: 'g1', feature: 'ai_backgrounds', generations: 10, occurredAt: '2025-03-10T10:02:00Z' }); // 20 credits
  const NOW = '2025-03-10T10:05:00Z';

  it('usage that arrives before the subscription it falls under counts in the paid period', () => {
    const late = run([use, sub], NOW);
    const inOrder = run([sub, use], NOW);
    const view = usageView(SPACE_ID, usageSourceOf(late), at(NOW), defaultCatalog());
    expect(view.plan).toBe('pro');
    expect(view.periodStart).toBe('2025-03-10T10:00:00.000Z');
    expect(view.pools.ai_image_credits).toMatchObject({ used: 20, limit: 125 });
    expect([...late.periods.values()]).toEqual([...inOrder.periods.values()]);
  });

  it('a late cycle change re-anchors later segments as if it had arrived in order', () => {
    const a = subscribe('pro', 'weekly', '2025-01-01T00:00:00Z', { eventId: 'a' });
    const b = subscribe('pro', 'monthly', '2025-02-10T00:00:00Z', { eventId: 'b' });
    const c = subscribe('max', 'monthly', '2025-03-01T00:00:00Z', { eventId: 'c' });
    const now = '2025-04-01T00:00:00Z';
    const ordered = run([a, b, c], now);
    const shuffled = run([c, a, b], now);
    expect(shuffled.timeline).toEqual(ordered.timeline);
    // c continues b's monthly anchor (Feb 10), not its own effectiveAt.
    expect(shuffled.timeline.map((s) => new Date(s.anchorAt).toISOString())).toEqual([
      '2025-01-01T00:00:00.000Z',
      '2025-02-10T00:00:00.000Z',
      '2025-02-10T00:00:00.000Z',
    ]);
  });

  it('a late weekly -> monthly change moves usage already recorded into the period it starts (which keeps the interrupted week)', () => {
    const weekly = subscribe('pro', 'weekly', '2025-01-01T00:00:00Z', { eventId: 'w' });
    const monthly = subscribe('pro', 'monthly', '2025-01-20T00:00:00Z', { eventId: 'm' });
    const g = generate({ eventId: 'g', feature: 'ai_shadows', generations: 3, occurredAt: '2025-01-21T00:00:00Z' });
    const s = run([weekly, g, monthly], '2025-01-22T00:00:00Z');
    // Without the monthly change it sat in the week [Jan 15, Jan 22); with it, in the period the change
    // starts: from the interrupted week's start to a month after the change.
    expect(s.periods.get(at('2025-01-15T00:00:00Z'))).toMatchObject({ end: at('2025-02-20T00:00:00Z'), used: { ai_image_credits: 3 } });
    expect(s.periods.has(at('2025-01-20T00:00:00Z'))).toBe(false);
  });
});

describe('re-driving after a catalog update', () => {
  const catalog = catalogWithVersion2('2025-06-01T00:00:00Z', (v) => {
    v.features.sky_replace = { medium: 'image', credits: 4 };
    v.perBatchCap.web = 150;
  });

  it('a feature unknown when it occurred is priced with the version in force now', () => {
    const cmd = generate({ feature: 'sky_replace', generations: 2, occurredAt: '2025-05-20T00:00:00Z' });
    given([]).when(cmd, { now: '2025-05-20T00:00:01Z', catalog }).thenRejects('feature', 'known_feature');
    given([])
      .when(cmd, { now: '2025-06-02T00:00:00Z', catalog })
      .thenMatch([{ type: 'GenerationRecorded', data: { credits: 8, unitCost: 4, catalogVersion: 2, occurredAt: '2025-05-20T00:00:00.000Z' } }]);
  });

  it('a known feature keeps the price of the version in force when it occurred', () => {
    given([])
      .when(generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-05-20T00:00:00Z' }), { now: '2025-06-02T00:00:00Z', catalog })
      .thenMatch([{ type: 'GenerationRecorded', data: { catalogVersion: 1, credits: 2 } }]);
  });

  it('a batch over the old cap passes once the cap in force now allows it', () => {
    const cmd = exportBatch({ images: 120, platform: 'web', occurredAt: '2025-05-20T00:00:00Z' });
    given([]).when(cmd, { now: '2025-05-21T00:00:00Z', catalog }).thenRejects('images', 'per_batch_cap');
    // A free Space has no batch exports: any use reaches both thresholds of the zero limit.
    given([])
      .when(cmd, { now: '2025-06-02T00:00:00Z', catalog })
      .thenMatch([
        { type: 'BatchExportRecorded', data: { images: 120, catalogVersion: 2 } },
        { type: 'ThresholdCrossed', data: { threshold: 80, limit: 0 } },
        { type: 'ThresholdCrossed', data: { threshold: 100, limit: 0 } },
      ]);
  });
});

describe('clock skew', () => {
  it('refuses usage dated more than an hour in the future, accepts up to an hour', () => {
    const now = '2025-05-20T00:00:00Z';
    given([]).when(generate({ occurredAt: '2025-05-20T01:00:01Z' }), { now }).thenRejects('occurredAt', 'not_in_future');
    given([]).when(exportBatch({ occurredAt: '2025-05-20T01:00:01Z' }), { now }).thenRejects('occurredAt', 'not_in_future');
    given([]).when(generate({ occurredAt: '2025-05-20T00:59:59Z' }), { now }).thenMatch([{ type: 'GenerationRecorded' }]);
  });
});

// Keeps `history` referenced for readers looking for the builder of valid histories.
void history;

describe('a subscription change decided before it takes effect', () => {
  // pro weekly from Mar 3 (Monday); 25 ai_shadows credits used of 30 -> 80 % fired.
  const base = () =>
    history([
      subscribe('pro', 'weekly', '2025-03-03T00:00:00Z', { eventId: 'pro' }),
      generate({ eventId: 'g1', feature: 'ai_shadows', generations: 25, occurredAt: '2025-03-04T00:00:00Z' }),
    ]);
  const upgrade = subscribe('max', 'weekly', '2025-03-06T00:00:00Z', { eventId: 'max' }); // 90 credits

  it('changes nothing about thresholds when decided, and re-arms them when the scheduler activates it', () => {
    const decided = given(base())
      .when(upgrade, { now: '2025-03-05T00:00:00Z' })
      .thenMatch([{ type: 'SubscriptionChanged', data: { plan: 'max', decidedAt: '2025-03-05T00:00:00.000Z' } }]);
    expect(decided.state.timeline.at(-1)?.pendingSourceEventId).toBe('max');
    // Before it takes effect the scheduler has nothing to do.
    given(decided.history).when(resetDue(), { now: '2025-03-05T12:00:00Z' }).thenNothing();
    // Once in force: activated, and 25 of 90 is under 80 %: re-armed.
    const activated = given(decided.history)
      .when(resetDue(), { now: '2025-03-06T00:00:01Z' })
      .thenMatch([
        { type: 'SubscriptionActivated', data: { sourceEventId: 'max', effectiveAt: '2025-03-06T00:00:00.000Z' } },
        { type: 'ThresholdRearmed', data: { pool: 'ai_image_credits', threshold: 80, used: 25, limit: 90, causationId: 'max' } },
      ]);
    expect(activated.state.timeline.some((s) => s.pendingSourceEventId !== undefined)).toBe(false);
    // Activated once: the next pass appends nothing.
    given(activated.history).when(resetDue(), { now: '2025-03-06T00:01:00Z' }).thenNothing();
    // And the 80 % of the new limit fires again later in the same period.
    given(activated.history)
      .when(generate({ eventId: 'g2', feature: 'ai_shadows', generations: 50, occurredAt: '2025-03-06T01:00:00Z' }), { now: '2025-03-06T01:00:00Z' })
      .thenMatch([{ type: 'GenerationRecorded' }, { type: 'ThresholdCrossed', data: { threshold: 80, used: 75, limit: 90 } }]);
  });

  it('a downgrade decided ahead fires the thresholds it reaches when it takes effect', () => {
    const h = history([
      subscribe('max', 'weekly', '2025-03-03T00:00:00Z', { eventId: 'max0' }),
      generate({ eventId: 'g1', feature: 'ai_shadows', generations: 28, occurredAt: '2025-03-04T00:00:00Z' }), // 28 of 90
    ]);
    const decided = given(h).when(subscribe('pro', 'weekly', '2025-03-06T00:00:00Z', { eventId: 'down' }), { now: '2025-03-05T00:00:00Z' }).then([
      expect.objectContaining({ type: 'SubscriptionChanged' }),
    ]);
    given(decided.history)
      .when(resetDue(), { now: '2025-03-06T00:00:01Z' })
      .thenMatch([{ type: 'SubscriptionActivated' }, { type: 'ThresholdCrossed', data: { threshold: 80, used: 28, limit: 30, causationId: 'down' } }]);
  });
});
