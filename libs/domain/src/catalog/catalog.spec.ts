import defaultCatalogJson from './default-catalog.json';
import {
  CYCLES,
  type Catalog,
  type CatalogVersion,
  type Cycle,
  PLANS,
  type Plan,
  appendCatalogVersion,
  catalogVersionAt,
  effectiveFromMs,
  latestCatalogVersion,
  parseCatalog,
  resetFamilyOf,
  validateCatalogVersion,
} from './catalog';
import { catalogWithVersion2, defaultVersionCopy } from '../testing/catalogs';

type PaidOrFree = Exclude<Plan, 'enterprise'>;

// The published batch-export table (DESIGN.md), typed in from the design, not from the catalog.
// null = "n/a": the plan/cycle pair does not exist.
const BATCH_TABLE: Record<Cycle, Record<PaidOrFree, number | null>> = {
  weekly: { free: 0, pro: 125, max: 400, ultra: null, ultra_2x: null, ultra_5x: null, ultra_10x: null },
  monthly: { free: 0, pro: 500, max: 1500, ultra: 4000, ultra_2x: 8000, ultra_5x: 20000, ultra_10x: 40000 },
  yearly: { free: 0, pro: 500, max: 1500, ultra: 4000, ultra_2x: 8000, ultra_5x: 20000, ultra_10x: 40000 },
};
const NON_ENTERPRISE = PLANS.filter((p): p is PaidOrFree => p !== 'enterprise');

describe('catalog', () => {
  let catalog: Catalog;
  let v1: CatalogVersion;
  beforeAll(() => {
    catalog = parseCatalog(defaultCatalogJson);
    v1 = latestCatalogVersion(catalog);
  });

  test('effectiveFromMs is Date.parse of the version\'s effectiveFrom, kept per version and text: an edited version is parsed again', () => {
    const v2 = catalogWithVersion2('2027-01-01T00:00:00Z', () => undefined).versions[1];
    expect(effectiveFromMs(v2)).toBe(Date.parse('2027-01-01T00:00:00Z'));
    expect(effectiveFromMs(v2)).toBe(Date.parse('2027-01-01T00:00:00Z'));
    v2.effectiveFrom = '2027-03-01T12:00:00+02:00';
    expect(effectiveFromMs(v2)).toBe(Date.parse('2027-03-01T10:00:00Z'));
  });

  describe('the default catalog', () => {
    it('parses, with no problem in any version', () => {
      expect(catalog.versions.length).toBeGreaterThanOrEqual(1);
      for (const v of catalog.versions) expect(validateCatalogVersion(v)).toEqual([]);
    });

    it('notifies at 80 % and 100 %', () => {
      expect(v1.thresholds).toEqual([80, 100]);
    });

    it('lets enterprise take every cycle', () => {
      expect([...v1.enterpriseCycles].sort()).toEqual([...CYCLES].sort());
    });
  });

  describe('batch-export allowance matches the published table', () => {
    const rows = CYCLES.flatMap((cycle) => NON_ENTERPRISE.map((plan) => [plan, cycle, BATCH_TABLE[cycle][plan]] as const));
    it.each(rows)('%s / %s -> %p', (plan, cycle, expected) => {
      const limits = v1.plans[plan][cycle];
      if (expected === null) expect(limits).toBeUndefined();
      else expect(limits?.batch_exports).toBe(expected);
    });

    it('lists no cycle the table does not have', () => {
      for (const plan of NON_ENTERPRISE) for (const cycle of Object.keys(v1.plans[plan])) expect(CYCLES).toContain(cycle);
    });
  });

  describe('AI credit allowance ratios', () => {
    const ai = (plan: PaidOrFree, cycle: Cycle) => {
      const l = v1.plans[plan][cycle];
      if (!l) throw new Error(`${plan}/${cycle} missing`);
      return [l.ai_image_credits, l.ai_video_credits];
    };
    const times = (k: number, [img, vid]: number[]) => [k * img, k * vid];

    it.each(['monthly', 'yearly'] as const)('%s: pro = 5x free, max = 3x pro, ultra = 2x max, ultra_Nx = N x ultra', (cycle) => {
      expect(ai('pro', cycle)).toEqual(times(5, ai('free', cycle)));
      expect(ai('max', cycle)).toEqual(times(3, ai('pro', cycle)));
      expect(ai('ultra', cycle)).toEqual(times(2, ai('max', cycle)));
      expect(ai('ultra_2x', cycle)).toEqual(times(2, ai('ultra', cycle)));
      expect(ai('ultra_5x', cycle)).toEqual(times(5, ai('ultra', cycle)));
      expect(ai('ultra_10x', cycle)).toEqual(times(10, ai('ultra', cycle)));
    });

    it.each(['monthly', 'yearly'] as const)('%s: the batch table scales like the credits for ultra_Nx', (cycle) => {
      const ultra = v1.plans.ultra[cycle]!.batch_exports;
      expect(v1.plans.ultra_2x[cycle]!.batch_exports).toBe(2 * ultra);
      expect(v1.plans.ultra_5x[cycle]!.batch_exports).toBe(5 * ultra);
      expect(v1.plans.ultra_10x[cycle]!.batch_exports).toBe(10 * ultra);
    });

    it('weekly: max = 3x pro', () => {
      expect(ai('max', 'weekly')).toEqual(times(3, ai('pro', 'weekly')));
    });

    it.each(['pro', 'max'] as const)('weekly %s gets lower AI limits than monthly', (plan) => {
      const [wi, wv] = ai(plan, 'weekly');
      const [mi, mv] = ai(plan, 'monthly');
      expect(wi).toBeLessThan(mi);
      expect(wv).toBeLessThan(mv);
    });

    it('free has the published defaults: 25 image / 5 video credits', () => {
      expect(ai('free', 'monthly')).toEqual([25, 5]);
    });
  });

  describe('features', () => {
    it.each(['background_removal', 'white_background', 'templates'])('%s is free (0 credits)', (id) => {
      expect(v1.features[id]).toEqual({ medium: 'image', credits: 0 });
    });

    it('virtual_model is the most expensive image feature', () => {
      const others = Object.entries(v1.features).filter(([id, f]) => f.medium === 'image' && id !== 'virtual_model');
      expect(others.length).toBeGreaterThan(0);
      for (const [, f] of others) expect(v1.features.virtual_model.credits).toBeGreaterThan(f.credits);
    });

    it.each(['ai_backgrounds', 'ai_shadows', 'ghost_mannequin', 'virtual_model'])('%s is a paid image feature', (id) => {
      expect(v1.features[id].medium).toBe('image');
      expect(v1.features[id].credits).toBeGreaterThan(0);
    });

    it('ai_video is a paid video feature', () => {
      expect(v1.features.ai_video.medium).toBe('video');
      expect(v1.features.ai_video.credits).toBeGreaterThan(0);
    });

    it('caps a batch at 100 images on web and 250 on mobile', () => {
      expect(v1.perBatchCap.web).toBe(100);
      expect(v1.perBatchCap.mobile).toBe(250);
    });
  });

  describe('resetFamilyOf', () => {
    it.each([
      ['free', 'weekly', 'never'],
      ['free', 'monthly', 'never'],
      ['free', 'yearly', 'never'],
      ['pro', 'weekly', 'weekly'],
      ['pro', 'monthly', 'monthly'],
      ['max', 'yearly', 'monthly'], // yearly plans reset monthly
      ['enterprise', 'weekly', 'weekly'],
      ['enterprise', 'yearly', 'monthly'],
    ] as const)('%s / %s resets %s', (plan, cycle, family) => {
      expect(resetFamilyOf(plan, cycle)).toBe(family);
    });
  });

  describe('validateCatalogVersion names the field and the rule', () => {
    const broken = (edit: (v: Record<string, any>) => void) => {
      const v = defaultVersionCopy() as unknown as Record<string, any>;
      edit(v);
      return validateCatalogVersion(v).map(({ field, rule }) => ({ field, rule }));
    };

    it.each<[string, (v: Record<string, any>) => void, { field: string; rule: string }]>([
      ['version 0', (v) => (v.version = 0), { field: 'version', rule: 'positive_integer' }],
      ['version 1.5', (v) => (v.version = 1.5), { field: 'version', rule: 'positive_integer' }],
      ['effectiveFrom not a date', (v) => (v.effectiveFrom = 'soon'), { field: 'effectiveFrom', rule: 'iso_instant' }],
      ['effectiveFrom without a zone', (v) => (v.effectiveFrom = '2030-01-01T00:00:00'), { field: 'effectiveFrom', rule: 'iso_instant' }],
      ['effectiveFrom not ISO', (v) => (v.effectiveFrom = 'March 7, 2030'), { field: 'effectiveFrom', rule: 'iso_instant' }],
      ['plans missing', (v) => delete v.plans, { field: 'plans', rule: 'object' }],
      ['a plan missing', (v) => delete v.plans.max, { field: 'plans.max', rule: 'required' }],
      ['unknown plan', (v) => (v.plans.gold = {}), { field: 'plans.gold', rule: 'known_plan' }],
      ['enterprise in plans', (v) => (v.plans.enterprise = {}), { field: 'plans.enterprise', rule: 'known_plan' }],
      [
        'unknown cycle',
        (v) => (v.plans.pro.daily = { ai_image_credits: 1, ai_video_credits: 1, batch_exports: 1 }),
        { field: 'plans.pro.daily', rule: 'known_cycle' },
      ],
      ['negative limit', (v) => (v.plans.pro.monthly.batch_exports = -1), { field: 'plans.pro.monthly.batch_exports', rule: 'non_negative_integer' }],
      ['fractional limit', (v) => (v.plans.max.weekly.ai_video_credits = 2.5), { field: 'plans.max.weekly.ai_video_credits', rule: 'non_negative_integer' }],
      ['missing limit', (v) => delete v.plans.ultra.yearly.ai_image_credits, { field: 'plans.ultra.yearly.ai_image_credits', rule: 'non_negative_integer' }],
      ['unknown enterprise cycle', (v) => (v.enterpriseCycles = ['monthly', 'daily']), { field: 'enterpriseCycles', rule: 'known_cycles' }],
      ['no features', (v) => (v.features = {}), { field: 'features', rule: 'non_empty_object' }],
      ['bad feature id', (v) => (v.features['AI-Thing'] = { medium: 'image', credits: 1 }), { field: 'features.AI-Thing', rule: 'feature_id' }],
      ['bad medium', (v) => (v.features.ai_video.medium = 'audio'), { field: 'features.ai_video.medium', rule: 'image_or_video' }],
      ['negative credits', (v) => (v.features.ai_shadows.credits = -2), { field: 'features.ai_shadows.credits', rule: 'non_negative_integer' }],
      ['no per-batch cap', (v) => (v.perBatchCap = {}), { field: 'perBatchCap', rule: 'non_empty_object' }],
      ['zero per-batch cap', (v) => (v.perBatchCap.web = 0), { field: 'perBatchCap.web', rule: 'positive_integer' }],
      ['no thresholds', (v) => (v.thresholds = []), { field: 'thresholds', rule: 'ascending_percentages' }],
      ['thresholds not ascending', (v) => (v.thresholds = [100, 80]), { field: 'thresholds', rule: 'ascending_percentages' }],
      ['threshold over 100', (v) => (v.thresholds = [80, 120]), { field: 'thresholds', rule: 'ascending_percentages' }],
    ])('%s', (_name, edit, problem) => {
      expect(broken(edit)).toEqual([problem]);
    });

    it('reports every problem, not just the first', () => {
      const problems = broken((v) => {
        v.version = -1;
        v.thresholds = [];
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          { field: 'version', rule: 'positive_integer' },
          { field: 'thresholds', rule: 'ascending_percentages' },
        ]),
      );
    });

    it('refuses a non-object', () => {
      expect(validateCatalogVersion(null)).toEqual([expect.objectContaining({ field: '', rule: 'object' })]);
      expect(validateCatalogVersion('v1')).toEqual([expect.objectContaining({ rule: 'object' })]);
    });
  });

  describe('parseCatalog', () => {
    it('refuses an empty catalog', () => {
      expect(() => parseCatalog({ versions: [] })).toThrow(/non-empty/);
      expect(() => parseCatalog(undefined)).toThrow(/non-empty/);
    });

    it('refuses versions that do not increase or effective dates that do not move forward', () => {
      const a = defaultVersionCopy();
      const b = { ...defaultVersionCopy(), version: 1, effectiveFrom: '2031-01-01T00:00:00Z' };
      expect(() => parseCatalog({ versions: [a, b] })).toThrow(/versions\[1\]\.version/);
      const c = { ...defaultVersionCopy(), version: 2, effectiveFrom: a.effectiveFrom };
      expect(() => parseCatalog({ versions: [a, c] })).toThrow(/versions\[1\]\.effectiveFrom/);
    });

    it('returns a copy: editing the input later does not change the catalog', () => {
      const raw = { versions: [defaultVersionCopy()] };
      const parsed = parseCatalog(raw);
      raw.versions[0].features.ai_video.credits = 99;
      expect(parsed.versions[0].features.ai_video.credits).toBe(5);
    });
  });

  describe('catalogVersionAt', () => {
    const two = () => catalogWithVersion2('2030-06-01T00:00:00Z', (v) => (v.features.virtual_model.credits = 8));
    it.each([
      ['long before every version', '1999-01-01T00:00:00Z', 1],
      ['the last instant of version 1', '2030-05-31T23:59:59.999Z', 1],
      ['the instant version 2 takes effect', '2030-06-01T00:00:00Z', 2],
      ['after version 2', '2031-01-01T00:00:00Z', 2],
    ])('%s -> version %d', (_n, t, version) => {
      expect(catalogVersionAt(two(), Date.parse(t)).version).toBe(version);
    });
  });

  describe('appendCatalogVersion', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const next = (over: Partial<CatalogVersion> = {}): CatalogVersion => ({
      ...defaultVersionCopy(),
      version: 2,
      effectiveFrom: '2030-02-01T00:00:00Z',
      ...over,
    });

    it('adds the next version, effective in the future', () => {
      const out = appendCatalogVersion(catalog, next(), now);
      expect(out.versions.map((v) => v.version)).toEqual([1, 2]);
      expect(catalog.versions).toHaveLength(1); // the input is not mutated
    });

    it('accepts a version that takes effect right now', () => {
      expect(appendCatalogVersion(catalog, next({ effectiveFrom: new Date(now).toISOString() }), now).versions).toHaveLength(2);
    });

    it.each([
      ['skips a number', { version: 3 }, /version: must be 2/],
      ['repeats the number', { version: 1 }, /version: must be 2/],
      ['takes effect in the past', { effectiveFrom: '2029-12-31T23:59:59Z' }, /must not be in the past/],
      ['takes effect before the latest version', { effectiveFrom: '2019-01-01T00:00:00Z' }, /must be later than version 1/],
      ['is invalid', { thresholds: [] }, /thresholds/],
    ])('refuses a version that %s', (_n, over, message) => {
      expect(() => appendCatalogVersion(catalog, next(over as Partial<CatalogVersion>), now)).toThrow(message);
    });
  });
});
