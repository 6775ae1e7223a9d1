/**
 * Read-side rules: the usage screen and the entitlement check. They take the Space's timeline and
 * a lookup of usage by period, so both the live decider state and a read model can feed them.
 */
import { type Catalog, type Cycle, type Limits, type Plan, type Pool, POOLS, catalogVersionAt } from './catalog/catalog';
import type { Rejection } from './contracts';
import { batchCap, creditsFor, emptyLimits, featurePrice, isPositiveInt } from './catalog/pricing';
import { type Period, iso } from './period';
import type { SpaceState } from './space';
import { type Timeline, limitsFor, periodAt } from './timeline';

export interface UsageSource {
  timeline: Timeline;
  /** Usage recorded in the period that starts at `periodStart` (epoch ms); zeros when none. */
  usedIn(periodStart: number): Limits;
  /**
   * Optional: `periodAt(timeline, t)` from a finder the source keeps for its timeline (the
   * entitlement view's entries do; it spares a lookup of the timeline's finder per check).
   */
  periodAt?(t: number): Period;
}

/** The period of the source's timeline that contains t: from the source's own finder when it keeps one. */
function periodOfSource(source: UsageSource, t: number): Period {
  return source.periodAt !== undefined ? source.periodAt(t) : periodAt(source.timeline, t);
}

export function usageSourceOf(state: SpaceState): UsageSource {
  return {
    timeline: state.timeline,
    usedIn: (start) => {
      const p = state.periods.get(start);
      return p ? { ...p.used } : emptyLimits();
    },
  };
}

export interface PoolUsage {
  used: number;
  limit: number;
  remaining: number;
  /** used / limit in percent, 2 decimals; over 100 when over the limit; 100 for any use of a zero limit. */
  percent: number;
  over: boolean;
}

export interface UsageView {
  spaceId: string;
  plan: Plan;
  cycle: Cycle;
  periodStart: string;
  periodEnd: string | null;
  /** When the pools next reset; null for free (never resets). */
  nextResetAt: string | null;
  pools: Record<Pool, PoolUsage>;
  asOf: string;
}

export function percentOf(used: number, limit: number): number {
  if (limit === 0) return used > 0 ? 100 : 0;
  return Math.round((used * 10_000) / limit) / 100;
}

export function poolUsage(used: number, limit: number): PoolUsage {
  return { used, limit, remaining: Math.max(0, limit - used), percent: percentOf(used, limit), over: used > limit };
}

export function usageView(spaceId: string, source: UsageSource, now: number, catalog: Catalog): UsageView {
  const period = periodOfSource(source, now);
  const seg = limitsFor(source.timeline, period, now, catalog);
  const used = source.usedIn(period.start);
  const pools = {} as Record<Pool, PoolUsage>;
  for (const pool of POOLS) pools[pool] = poolUsage(used[pool], seg.limits[pool]);
  return {
    spaceId,
    plan: seg.plan,
    cycle: seg.cycle,
    periodStart: iso(period.start),
    periodEnd: period.end === null ? null : iso(period.end),
    nextResetAt: period.end === null ? null : iso(period.end),
    pools,
    asOf: iso(now),
  };
}

export type EntitlementRequest =
  | { kind: 'generation'; feature: string; generations: number }
  | { kind: 'batch'; images: number; platform: string };

export type EntitlementReason = 'within_limit' | 'free_feature' | 'limit_reached' | 'insufficient_remaining' | 'per_batch_cap';

export interface EntitlementAnswer {
  allowed: boolean;
  pool: Pool;
  cost: number;
  used: number;
  limit: number;
  /** Remaining before this spend. */
  remaining: number;
  reason: EntitlementReason;
  message: string;
  catalogVersion: number;
  periodEnd: string | null;
}

/** May the Space spend now? Usage past a limit is allowed to be recorded, but the check says no. */
export function checkEntitlement(
  source: UsageSource,
  request: EntitlementRequest,
  now: number,
  catalog: Catalog,
): { ok: true; answer: EntitlementAnswer } | { ok: false; rejection: Rejection } {
  const cv = catalogVersionAt(catalog, now);
  const period = periodOfSource(source, now);
  const seg = limitsFor(source.timeline, period, now, catalog);
  const usedAll = source.usedIn(period.start);
  let pool: Pool;
  let cost: number;
  if (request.kind === 'generation') {
    const priced = featurePrice(cv, request.feature);
    if (!priced.ok) return priced;
    if (!isPositiveInt(request.generations))
      return { ok: false, rejection: { field: 'generations', rule: 'positive_integer', message: 'generations must be an integer >= 1' } };
    pool = priced.pool;
    cost = creditsFor(priced.price, request.generations);
  } else {
    const capped = batchCap(cv, request.platform);
    if (!capped.ok) return capped;
    const { cap } = capped;
    if (!isPositiveInt(request.images))
      return { ok: false, rejection: { field: 'batchImages', rule: 'positive_integer', message: 'batchImages must be an integer >= 1' } };
    pool = 'batch_exports';
    cost = request.images;
    if (request.images > cap) {
      const used = usedAll[pool];
      const limit = seg.limits[pool];
      return {
        ok: true,
        answer: {
          allowed: false, pool, cost, used, limit, remaining: Math.max(0, limit - used), reason: 'per_batch_cap',
          message: `a batch holds at most ${cap} images on ${request.platform}`, catalogVersion: cv.version,
          periodEnd: period.end === null ? null : iso(period.end),
        },
      };
    }
  }
  const used = usedAll[pool];
  const limit = seg.limits[pool];
  const remaining = Math.max(0, limit - used);
  let reason: EntitlementReason;
  let allowed: boolean;
  if (cost === 0) [allowed, reason] = [true, 'free_feature'];
  else if (remaining === 0) [allowed, reason] = [false, 'limit_reached'];
  else if (cost > remaining) [allowed, reason] = [false, 'insufficient_remaining'];
  else [allowed, reason] = [true, 'within_limit'];
  // Only the message of the reason given is built (the check is on the hot path).
  let message: string;
  switch (reason) {
    case 'within_limit':
      message = `${cost} of ${remaining} remaining ${pool}`;
      break;
    case 'free_feature':
      message = 'this feature costs no credits';
      break;
    case 'limit_reached':
      message = `the ${pool} limit of ${limit} is reached for this period`;
      break;
    default:
      message = `needs ${cost} ${pool}, ${remaining} remain in this period`;
  }
  return {
    ok: true,
    answer: { allowed, pool, cost, used, limit, remaining, reason, message, catalogVersion: cv.version, periodEnd: period.end === null ? null : iso(period.end) },
  };
}
