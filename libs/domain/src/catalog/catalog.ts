/**
 * The versioned, effective-dated catalog: plans and their allowances, feature costs, per-batch
 * caps and notification thresholds. Recorded usage keeps the catalog version and unit cost it was
 * priced with, so a new version never reprices history.
 */
import { type ResetFamily, parseInstant } from '../period';

export const PLANS = ['free', 'pro', 'max', 'ultra', 'ultra_2x', 'ultra_5x', 'ultra_10x', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];
export const CYCLES = ['weekly', 'monthly', 'yearly'] as const;
export type Cycle = (typeof CYCLES)[number];
export const POOLS = ['ai_image_credits', 'ai_video_credits', 'batch_exports'] as const;
export type Pool = (typeof POOLS)[number];
export const MEDIA = ['image', 'video'] as const;
export type Medium = (typeof MEDIA)[number];

export type Limits = Record<Pool, number>;

export interface FeaturePrice {
  medium: Medium;
  /** Credits per generation. 0 for free features. */
  credits: number;
}

export interface CatalogVersion {
  version: number;
  /** ISO-8601 instant from which this version prices usage. */
  effectiveFrom: string;
  /** Allowance per plan and cycle; a cycle absent for a plan means the pair does not exist. */
  plans: Record<Exclude<Plan, 'enterprise'>, Partial<Record<Cycle, Limits>>>;
  /** Enterprise has custom limits per Space; these are the cycles it may take. */
  enterpriseCycles: Cycle[];
  features: Record<string, FeaturePrice>;
  /** Max images per batch, by platform. */
  perBatchCap: Record<string, number>;
  /** Notification thresholds in percent of a limit, ascending (e.g. [80, 100]). */
  thresholds: number[];
  notes?: string;
}

export interface Catalog {
  /** Sorted by effectiveFrom ascending, versions strictly increasing. */
  versions: CatalogVersion[];
}

export function resetFamilyOf(plan: Plan, cycle: Cycle): ResetFamily {
  if (plan === 'free') return 'never';
  return cycle === 'weekly' ? 'weekly' : 'monthly';
}

/** The version in force at t (the first version for instants before every version). */
export function catalogVersionAt(catalog: Catalog, t: number): CatalogVersion {
  let found = catalog.versions[0];
  for (const v of catalog.versions) {
    if (effectiveFromMs(v) <= t) found = v;
    else break;
  }
  return found;
}

/** `effectiveFrom` of each version as parsed last, with the text it was parsed from (a version edited since is parsed again). */
const effectiveFromParsed = new WeakMap<CatalogVersion, { text: string; ms: number }>();

/**
 * A version's `effectiveFrom` in epoch ms (`Date.parse`), parsed once per version and text: the
 * entitlement check and the decider ask for it on every call (catalogVersionAt, allowanceDuring).
 */
export function effectiveFromMs(v: CatalogVersion): number {
  const kept = effectiveFromParsed.get(v);
  if (kept !== undefined && kept.text === v.effectiveFrom) return kept.ms;
  const ms = Date.parse(v.effectiveFrom);
  effectiveFromParsed.set(v, { text: v.effectiveFrom, ms });
  return ms;
}

export function latestCatalogVersion(catalog: Catalog): CatalogVersion {
  return catalog.versions[catalog.versions.length - 1];
}

export interface CatalogProblem {
  field: string;
  rule: string;
  message: string;
}

const isNonNegInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/** Checks one catalog version; returns every problem found (empty when valid). */
export function validateCatalogVersion(v: unknown): CatalogProblem[] {
  const problems: CatalogProblem[] = [];
  const p = (field: string, rule: string, message: string) => problems.push({ field, rule, message });
  if (typeof v !== 'object' || v === null) return [{ field: '', rule: 'object', message: 'a catalog version must be an object' }];
  const cv = v as Partial<CatalogVersion>;
  if (!Number.isInteger(cv.version) || (cv.version as number) < 1) p('version', 'positive_integer', 'version must be an integer >= 1');
  if (Number.isNaN(parseInstant(cv.effectiveFrom)))
    p('effectiveFrom', 'iso_instant', 'effectiveFrom must be an ISO-8601 instant');
  if (typeof cv.plans !== 'object' || cv.plans === null) p('plans', 'object', 'plans must be an object');
  else {
    for (const plan of PLANS) {
      if (plan === 'enterprise') continue;
      const byCycle = (cv.plans as Record<string, unknown>)[plan];
      if (typeof byCycle !== 'object' || byCycle === null) {
        p(`plans.${plan}`, 'required', `plan ${plan} must be listed`);
        continue;
      }
      for (const [cycle, limits] of Object.entries(byCycle)) {
        if (!(CYCLES as readonly string[]).includes(cycle)) p(`plans.${plan}.${cycle}`, 'known_cycle', `unknown cycle ${cycle}`);
        for (const pool of POOLS) {
          if (!isNonNegInt((limits as Record<string, unknown>)?.[pool]))
            p(`plans.${plan}.${cycle}.${pool}`, 'non_negative_integer', `${pool} must be an integer >= 0`);
        }
      }
    }
    for (const plan of Object.keys(cv.plans)) {
      if (!(PLANS as readonly string[]).includes(plan) || plan === 'enterprise') p(`plans.${plan}`, 'known_plan', `unknown plan ${plan}`);
    }
  }
  if (!Array.isArray(cv.enterpriseCycles) || cv.enterpriseCycles.some((c) => !(CYCLES as readonly string[]).includes(c)))
    p('enterpriseCycles', 'known_cycles', 'enterpriseCycles must list known cycles');
  if (typeof cv.features !== 'object' || cv.features === null || Object.keys(cv.features).length === 0)
    p('features', 'non_empty_object', 'features must list at least one feature');
  else {
    for (const [id, f] of Object.entries(cv.features)) {
      if (!/^[a-z][a-z0-9_]{0,63}$/.test(id)) p(`features.${id}`, 'feature_id', 'feature ids are lower_snake_case');
      if (!(MEDIA as readonly string[]).includes((f as FeaturePrice)?.medium)) p(`features.${id}.medium`, 'image_or_video', 'medium must be image or video');
      if (!isNonNegInt((f as FeaturePrice)?.credits)) p(`features.${id}.credits`, 'non_negative_integer', 'credits must be an integer >= 0');
    }
  }
  if (typeof cv.perBatchCap !== 'object' || cv.perBatchCap === null || Object.keys(cv.perBatchCap).length === 0)
    p('perBatchCap', 'non_empty_object', 'perBatchCap must list at least one platform');
  else
    for (const [platform, cap] of Object.entries(cv.perBatchCap))
      if (!isNonNegInt(cap) || cap < 1) p(`perBatchCap.${platform}`, 'positive_integer', 'a per-batch cap must be an integer >= 1');
  if (
    !Array.isArray(cv.thresholds) ||
    cv.thresholds.length === 0 ||
    cv.thresholds.some((t, i, a) => !Number.isInteger(t) || t < 1 || t > 100 || (i > 0 && t <= a[i - 1]))
  )
    p('thresholds', 'ascending_percentages', 'thresholds must be ascending integers in 1..100');
  return problems;
}

/**
 * Checks a whole catalog: every version valid, versions strictly increasing and effective dates
 * strictly increasing. Throws an Error listing every problem.
 */
export function parseCatalog(raw: unknown): Catalog {
  const problems: string[] = [];
  const versions = (raw as Catalog)?.versions;
  if (!Array.isArray(versions) || versions.length === 0) throw new Error('catalog: versions must be a non-empty array');
  versions.forEach((v, i) => {
    for (const pr of validateCatalogVersion(v)) problems.push(`versions[${i}].${pr.field}: ${pr.message} (${pr.rule})`);
    if (i > 0) {
      if (!(v.version > versions[i - 1].version)) problems.push(`versions[${i}].version: must be greater than the previous version`);
      if (!(Date.parse(v.effectiveFrom) > Date.parse(versions[i - 1].effectiveFrom)))
        problems.push(`versions[${i}].effectiveFrom: must be later than the previous version's`);
    }
  });
  if (problems.length) throw new Error(`catalog is invalid:\n  ${problems.join('\n  ')}`);
  return { versions: versions.map((v) => structuredCloneJson(v)) };
}

/**
 * Adds a new version to a catalog. It must be valid, carry the next version number and take
 * effect strictly after the latest version (history is never repriced).
 */
export function appendCatalogVersion(catalog: Catalog, next: CatalogVersion, now: number): Catalog {
  const problems = validateCatalogVersion(next).map((p) => `${p.field}: ${p.message} (${p.rule})`);
  const latest = latestCatalogVersion(catalog);
  if (next.version !== latest.version + 1) problems.push(`version: must be ${latest.version + 1} (the next version)`);
  if (!(Date.parse(next.effectiveFrom) > Date.parse(latest.effectiveFrom)))
    problems.push(`effectiveFrom: must be later than version ${latest.version}'s ${latest.effectiveFrom}`);
  if (Date.parse(next.effectiveFrom) < now)
    problems.push('effectiveFrom: must not be in the past (history is never repriced)');
  if (problems.length) throw new Error(`catalog version is invalid:\n  ${problems.join('\n  ')}`);
  return { versions: [...catalog.versions, structuredCloneJson(next)] };
}

function structuredCloneJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
