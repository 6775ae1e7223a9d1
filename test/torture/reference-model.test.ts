/**
 * The reference model of the fault run (test/support/reference-model.ts) on hand-made cases: its
 * own period math and attribution must follow README "Rules decided where the brief is silent".
 */
import { ReferenceModel, loadRefCatalog, refAddMonths } from '../support/reference-model';

const t = (s: string) => Date.parse(s);

describe('reference model', () => {
  it('clamps month-end anchors without drifting', () => {
    const a = t('2026-01-31T10:00:00Z');
    expect([1, 2, 3, 13].map((k) => new Date(refAddMonths(a, k)).toISOString())).toEqual([
      '2026-02-28T10:00:00.000Z',
      '2026-03-31T10:00:00.000Z',
      '2026-04-30T10:00:00.000Z',
      '2027-02-28T10:00:00.000Z',
    ]);
    expect(new Date(refAddMonths(t('2028-03-31T00:00:00Z'), -1)).toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(new Date(refAddMonths(t('2026-01-15T00:00:00Z'), -13)).toISOString()).toBe('2024-12-15T00:00:00.000Z');
  });

  it('folds usage into the periods of the final timeline, keeps usage on upgrades, starts a period on a cycle change', () => {
    const m = new ReferenceModel(loadRefCatalog());
    const gen = (eventId: string, at: string, feature = 'ai_backgrounds', generations = 1) =>
      m.add({ type: 'generation-performed', eventId, spaceId: 's', userId: 'u', feature, medium: feature === 'ai_video' ? 'video' : 'image', generations, occurredAt: at });
    m.add({ type: 'subscription-changed', eventId: 'sub1', spaceId: 's', plan: 'pro', cycle: 'monthly', effectiveAt: '2026-01-31T10:00:00Z' });
    gen('late-free', '2026-01-20T00:00:00Z'); // before the subscription: the free period from the epoch
    gen('feb', '2026-03-01T00:00:00Z', 'ai_backgrounds', 2); // Feb 28 10:00 .. Mar 31 10:00
    gen('feb', '2026-03-01T00:00:00Z', 'ai_backgrounds', 2); // duplicate id: ignored
    gen('mar', '2026-04-10T00:00:00Z', 'virtual_model', 3); // Mar 31 .. Apr 30
    m.add({ type: 'subscription-changed', eventId: 'up', spaceId: 's', plan: 'max', cycle: 'monthly', effectiveAt: '2026-04-12T00:00:00Z' });
    let v = m.view('s', t('2026-04-20T00:00:00Z'));
    expect(v).toMatchObject({ plan: 'max', periodStart: t('2026-03-31T10:00:00Z'), periodEnd: t('2026-04-30T10:00:00Z') });
    expect(v.used.ai_image_credits).toBe(15);
    expect(v.limits.ai_image_credits).toBe(375);
    expect(m.space('s').used.get(0)?.ai_image_credits).toBe(2);
    expect(m.space('s').used.get(t('2026-02-28T10:00:00Z'))?.ai_image_credits).toBe(4);
    // Weekly from May 1: a new run, a new period anchored at the change.
    m.add({ type: 'subscription-changed', eventId: 'wk', spaceId: 's', plan: 'pro', cycle: 'weekly', effectiveAt: '2026-05-01T00:00:00Z' });
    gen('wk-use', '2026-05-09T00:00:00Z', 'ai_video');
    v = m.view('s', t('2026-05-09T01:00:00Z'));
    expect(v).toMatchObject({ plan: 'pro', cycle: 'weekly', periodStart: t('2026-05-08T00:00:00Z'), periodEnd: t('2026-05-15T00:00:00Z') });
    expect(v.used).toEqual({ ai_image_credits: 0, ai_video_credits: 5, batch_exports: 0 });
    // Resets: every period start inside a run except the run's own start.
    expect(m.resets('s', t('2026-05-09T00:00:00Z')).map((b) => new Date(b).toISOString())).toEqual([
      '2026-02-28T10:00:00.000Z',
      '2026-03-31T10:00:00.000Z',
      '2026-04-30T10:00:00.000Z',
      '2026-05-08T00:00:00.000Z',
    ]);
  });

  it('a change of family in the middle of a period keeps its usage (a flip hands out no fresh pool)', () => {
    const m = new ReferenceModel(loadRefCatalog());
    const sub = (eventId: string, plan: string, cycle: string, effectiveAt: string) => m.add({ type: 'subscription-changed', eventId, spaceId: 's', plan, cycle, effectiveAt });
    sub('m', 'pro', 'monthly', '2026-01-15T00:00:00Z');
    m.add({ type: 'generation-performed', eventId: 'g', spaceId: 's', userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 50, occurredAt: '2026-01-16T00:00:00Z' });
    sub('w', 'pro', 'weekly', '2026-01-17T00:00:00Z');
    sub('m2', 'pro', 'monthly', '2026-01-18T00:00:00Z');
    sub('f', 'free', 'monthly', '2026-01-19T00:00:00Z');
    sub('p', 'pro', 'monthly', '2026-01-20T00:00:00Z');
    const v = m.view('s', t('2026-01-21T00:00:00Z'));
    expect(v).toMatchObject({ plan: 'pro', cycle: 'monthly', periodStart: t('2026-01-15T00:00:00Z'), periodEnd: t('2026-02-20T00:00:00Z') });
    expect(v.used.ai_image_credits).toBe(100);
    // the interrupted part is the same period; the next reset is the last anchor's
    expect(m.periodAt('s', t('2026-01-16T00:00:00Z'))).toEqual({ start: t('2026-01-15T00:00:00Z'), end: t('2026-02-20T00:00:00Z') });
    expect(m.resets('s', t('2026-03-01T00:00:00Z')).map((b) => new Date(b).toISOString())).toEqual(['2026-02-20T00:00:00.000Z']);
    // at a renewal: fresh; a Space that never paid: fresh
    const n = new ReferenceModel(loadRefCatalog());
    n.add({ type: 'subscription-changed', eventId: 'a', spaceId: 'x', plan: 'pro', cycle: 'monthly', effectiveAt: '2026-01-15T00:00:00Z' });
    n.add({ type: 'subscription-changed', eventId: 'b', spaceId: 'x', plan: 'pro', cycle: 'weekly', effectiveAt: '2026-02-15T00:00:00Z' });
    expect(n.periodAt('x', t('2026-02-16T00:00:00Z'))).toEqual({ start: t('2026-02-15T00:00:00Z'), end: t('2026-02-22T00:00:00Z') });
    expect(n.periodAt('x', t('2026-01-15T00:00:00Z')).start).toBe(t('2026-01-15T00:00:00Z'));
  });

  it('any use of a zero limit reaches every threshold', () => {
    expect(ReferenceModel.reaches(1, 0, 100)).toBe(true);
    expect(ReferenceModel.reaches(0, 0, 80)).toBe(false);
    expect(ReferenceModel.reaches(79, 100, 80)).toBe(false);
    expect(ReferenceModel.reaches(80, 100, 80)).toBe(true);
  });
});
