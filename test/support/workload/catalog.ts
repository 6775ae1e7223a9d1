/**
 * The catalog tables every workload draws from: the (plan, cycle) pairs the default catalog offers,
 * its features with their medium and price, its platforms with their per-batch cap. Read from the
 * catalog the service starts with, so a workload never names a pair, feature or platform that does
 * not exist, and follows the catalog when it changes.
 */
import { type Cycle, type Limits, type Medium, type Plan, PLANS, defaultCatalogJson, latestCatalogVersion, parseCatalog } from '@metering/domain';

export interface PlanCycle {
  plan: Plan;
  cycle: Cycle;
}

export interface WorkloadCatalog {
  /** Every (plan, cycle) the catalog offers, in PLANS order (enterprise with each of its cycles). */
  pairs: PlanCycle[];
  /** The pairs of paid plans (not free). */
  paidPairs: PlanCycle[];
  cyclesOf(plan: Plan): Cycle[];
  plansWith(cycle: Cycle): Plan[];
  /** Position in PLANS: higher is an upgrade. */
  rank(plan: Plan): number;
  /** The catalog's limits of a pair (enterprise: none, it has custom limits). */
  limitsOf(plan: Plan, cycle: Cycle): Limits | undefined;
  /** Every feature, in catalog order. */
  features: { id: string; medium: Medium; credits: number }[];
  /** Every platform with its per-batch cap, in catalog order. */
  platforms: { id: string; cap: number }[];
}

let cached: WorkloadCatalog | null = null;

export function workloadCatalog(): WorkloadCatalog {
  if (cached) return cached;
  const cv = latestCatalogVersion(parseCatalog(defaultCatalogJson));
  const pairs: PlanCycle[] = [];
  for (const plan of PLANS) {
    if (plan === 'enterprise') for (const cycle of cv.enterpriseCycles) pairs.push({ plan, cycle });
    else for (const cycle of Object.keys(cv.plans[plan] ?? {}) as Cycle[]) pairs.push({ plan, cycle });
  }
  cached = {
    pairs,
    paidPairs: pairs.filter((p) => p.plan !== 'free'),
    cyclesOf: (plan) => pairs.filter((p) => p.plan === plan).map((p) => p.cycle),
    plansWith: (cycle) => pairs.filter((p) => p.cycle === cycle).map((p) => p.plan),
    rank: (plan) => PLANS.indexOf(plan),
    limitsOf: (plan, cycle) => (plan === 'enterprise' ? undefined : cv.plans[plan]?.[cycle]),
    features: Object.entries(cv.features).map(([id, f]) => ({ id, medium: f.medium, credits: f.credits })),
    platforms: Object.entries(cv.perBatchCap).map(([id, cap]) => ({ id, cap })),
  };
  return cached;
}
