/**
 * The simulated-clock life: a deterministic, randomized workload of inbound events over many Spaces
 * and ~6 months, fed to an IngestService while a test clock advances and period resets are appended.
 *
 * Same seed and options -> the same deliveries, in the same order, with the same ids. What it holds:
 *  - subscriptions to every (plan, cycle) pair the catalog offers (enterprise with customLimits on
 *    each of its cycles), never a pair that does not exist; later upgrades, downgrades and cycle
 *    changes (weekly <-> monthly/yearly, monthly <-> yearly), some back-dated by up to 36 h;
 *    some Spaces never subscribe (implicit free);
 *  - generations of every catalog feature with its medium, 1-3 generations, some inside a batch;
 *  - batch exports on every platform, within the platform's per-batch cap;
 *  - late events: occurredAt 8-34 days before delivery (inside the corrections window), in a period
 *    that is closed by then
 *    (checked against the Space's planned timeline with the domain's own period math);
 *  - redeliveries: the same event (same eventId, same payload) delivered again 0-3 days later;
 *  - arrivals spread over ~6 months in bursts (sessions), with a heavy tail of busy Spaces, so
 *    weekly and monthly resets fall due and several events of a Space often share a batch.
 *
 * `runWorkload` (run.ts) delivers it to an IngestService.
 */
import { type Cycle, type InboundEvent, type Limits, type Plan, insertSegment, periodAt, resetFamilyOf, type Segment } from '@metering/domain';
import { workloadCatalog } from './catalog';
import { customLimits as drawCustomLimits, randomUsage, subscriptionChanged } from './events';
import { draws, heavyTailWeight, pickWeighted, prng } from './random';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

export interface WorkloadOptions {
  seed?: number;
  /** Number of Spaces. Default 500. */
  spaces?: number;
  /** Distinct inbound events (redeliveries come on top). Default 10 000. */
  events?: number;
  /** First instant. Default 2026-01-01T00:00:00Z. */
  start?: string;
  /** Length of the workload in days. Default 182 (~6 months). */
  days?: number;
  /** Share of deliveries delivered a second time. Default 0.03. */
  redeliveryRate?: number;
  /** Share of usage events that arrive late (closed period). Default 0.04. */
  lateRate?: number;
  /** Arrivals are delivered in one ingest call per step of this length. Default 12 h. */
  stepMs?: number;
  /** ResetDuePeriods runs for every known Space this often (simulated time). Default 2 days. */
  resetEveryMs?: number;
  /** Added to every Space id (e.g. a random tag against a store that keeps earlier runs). Default ''. */
  tag?: string;
}

export interface Delivery {
  /** Instant the event reaches the service (epoch ms). */
  at: number;
  event: InboundEvent;
  redelivery: boolean;
  late: boolean;
}

export type WorkloadStep =
  | { kind: 'ingest'; at: number; deliveries: Delivery[] }
  | { kind: 'resets'; at: number };

export interface WorkloadStats {
  deliveries: number;
  distinct: number;
  redeliveries: number;
  late: number;
  byType: Record<InboundEvent['type'], number>;
  /** `${plan}/${cycle}` of every subscription event. */
  planCycles: string[];
  features: string[];
  platforms: string[];
  spacesNeverSubscribed: number;
}

export interface Workload {
  options: Required<WorkloadOptions>;
  spaceIds: string[];
  /** Every delivery in arrival order. */
  deliveries: Delivery[];
  /** Ingest and reset steps in time order. */
  steps: WorkloadStep[];
  start: number;
  end: number;
  stats: WorkloadStats;
}

const DEFAULTS: Required<WorkloadOptions> = {
  seed: 1,
  spaces: 500,
  events: 10_000,
  start: '2026-01-01T00:00:00Z',
  days: 182,
  redeliveryRate: 0.03,
  lateRate: 0.04,
  stepMs: 12 * HOUR,
  resetEveryMs: 2 * DAY,
  tag: '',
};

/** A Space id that sorts differently under byte order and under a linguistic collation now and then. */
function spaceIdOf(seed: number, i: number, tag: string): string {
  const n = `${tag}${String(i).padStart(4, '0')}`;
  switch (i % 6) {
    case 1:
      return `Space-${seed}-${n}`;
    case 2:
      return `space_${seed}.${n}`;
    case 3:
      return `SPACE:${seed}@${n}`;
    default:
      return `space-${seed}-${n}`;
  }
}

export function generateWorkload(options: WorkloadOptions = {}): Workload {
  const o: Required<WorkloadOptions> = { ...DEFAULTS, ...options };
  const d = draws(prng(o.seed));
  const { rand, int, pick } = d;
  const start = Date.parse(o.start);
  const end = start + o.days * DAY;

  const cat = workloadCatalog();
  const { pairs, cyclesOf, plansWith, rank } = cat;
  const customLimits = (): Limits => drawCustomLimits(d);

  const deliveries: Delivery[] = [];
  const stats: WorkloadStats = {
    deliveries: 0,
    distinct: 0,
    redeliveries: 0,
    late: 0,
    byType: { 'generation-performed': 0, 'batch-exported': 0, 'subscription-changed': 0 },
    planCycles: [],
    features: [],
    platforms: [],
    spacesNeverSubscribed: 0,
  };
  let seq = 0; // tie-break for equal arrival instants: generation order
  const order = new Map<Delivery, number>();
  const deliver = (x: Delivery) => {
    deliveries.push(x);
    order.set(x, seq++);
  };

  // Busy Spaces: weights with a heavy tail (a few Spaces get most of the traffic).
  const spaceIds = Array.from({ length: o.spaces }, (_, i) => spaceIdOf(o.seed, i, o.tag));
  const weights = spaceIds.map(() => heavyTailWeight(d));
  const totalWeight = weights.reduce((a, b) => a + b, 0);

  // Subscriptions first (they count towards `events`), then usage fills the rest.
  interface Planned { spaceId: string; startAt: number; subs: { at: number; plan: Plan; cycle: Cycle; effectiveAt: number; customLimits?: Limits }[] }
  const planned: Planned[] = spaceIds.map((spaceId, i) => {
    const startAt = start + Math.floor(rand() * 30 * DAY);
    const subs: Planned['subs'] = [];
    // Make sure every pair is used at least once (the first Spaces walk through the list).
    const never = i >= pairs.length && rand() < 0.12;
    if (!never) {
      let cur = i < pairs.length ? pairs[i] : pick(pairs);
      subs.push({ at: startAt, effectiveAt: startAt, ...cur, customLimits: cur.plan === 'enterprise' ? customLimits() : undefined });
      const changes = int(0, 3);
      const times = Array.from({ length: changes }, () => startAt + 7 * DAY + Math.floor(rand() * (end - startAt - 8 * DAY))).sort((a, b) => a - b);
      for (const at of times) {
        const r = rand();
        let next: { plan: Plan; cycle: Cycle };
        if (r < 0.45) {
          // Upgrade, same cycle (or new custom limits for enterprise).
          const higher = plansWith(cur.cycle).filter((p) => rank(p) > rank(cur.plan));
          next = { plan: higher.length ? pick(higher) : cur.plan, cycle: cur.cycle };
        } else if (r < 0.6) {
          const lower = plansWith(cur.cycle).filter((p) => rank(p) < rank(cur.plan));
          next = { plan: lower.length ? pick(lower) : cur.plan, cycle: cur.cycle };
        } else {
          // Cycle change: weekly <-> monthly/yearly, monthly <-> yearly; keep the plan when it has the cycle.
          const cycle = pick((['weekly', 'monthly', 'yearly'] as Cycle[]).filter((c) => c !== cur.cycle));
          next = { plan: cyclesOf(cur.plan).includes(cycle) ? cur.plan : pick(plansWith(cycle)), cycle };
        }
        const backdated = rand() < 0.2 ? Math.floor(rand() * 36 * HOUR) : 0;
        subs.push({ at, effectiveAt: Math.max(startAt + 1, at - backdated), ...next, customLimits: next.plan === 'enterprise' ? customLimits() : undefined });
        cur = next;
      }
    } else stats.spacesNeverSubscribed++;
    return { spaceId, startAt, subs };
  });

  for (const p of planned)
    p.subs.forEach((s, k) => {
      deliver({
        at: s.at,
        redelivery: false,
        late: false,
        event: subscriptionChanged({ eventId: `w${o.seed}-${p.spaceId}-sub-${k}`, spaceId: p.spaceId, plan: s.plan, cycle: s.cycle, effectiveAt: s.effectiveAt, customLimits: s.customLimits }),
      });
      stats.planCycles.push(`${s.plan}/${s.cycle}`);
    });

  // The planned timeline of each Space: to place late events in a period closed at delivery.
  const timelines = new Map<string, Segment[]>();
  for (const p of planned) {
    let tl: Segment[] = [];
    for (const s of p.subs)
      tl = insertSegment(tl, { effectiveAt: s.effectiveAt, plan: s.plan, cycle: s.cycle, limits: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 }, family: resetFamilyOf(s.plan, s.cycle) });
    timelines.set(p.spaceId, tl);
  }

  // Usage: sessions of 1-8 events within ~30 minutes, at random instants after the Space started.
  const usageBudget = Math.max(0, o.events - deliveries.length);
  const counters = new Map<string, number>();
  let made = 0;
  while (made < usageBudget) {
    // Pick a Space by weight.
    const p = planned[pickWeighted(d, weights, totalWeight)];
    let at = p.startAt + 10 * MINUTE + Math.floor(rand() * (end - p.startAt - 11 * MINUTE));
    const size = Math.min(int(1, 8), usageBudget - made);
    for (let k = 0; k < size; k++, made++) {
      at += int(5, 240) * 1000;
      const n = (counters.get(p.spaceId) ?? 0) + 1;
      counters.set(p.spaceId, n);
      let occurredAt = at - int(0, 120) * 1000;
      let late = false;
      // Late, but inside the corrections window (35 days): older usage is refused as too_late.
      if (rand() < o.lateRate && at - 34 * DAY >= start) {
        const candidate = at - int(8 * 24, 33 * 24) * HOUR - int(0, 3599) * 1000;
        const period = periodAt(timelines.get(p.spaceId)!, candidate);
        if (period.end !== null && period.end <= at) {
          occurredAt = candidate;
          late = true;
          stats.late++;
        }
      }
      const event = randomUsage(d, cat, { eventId: `w${o.seed}-${p.spaceId}-u-${n}`, spaceId: p.spaceId, userId: `user-${int(1, 5)}`, occurredAt }, `b-${n}`);
      if (event.type === 'generation-performed') stats.features.push(event.feature);
      else stats.platforms.push(event.platform);
      deliver({ at, event, redelivery: false, late });
    }
  }

  // Redeliveries: the same payload again, a little later (possibly in the same batch).
  const originals = [...deliveries];
  for (const x of originals) {
    if (rand() >= o.redeliveryRate) continue;
    const at = Math.min(end, x.at + Math.floor(rand() * 3 * DAY));
    deliver({ at, event: structuredClone(x.event), redelivery: true, late: x.late });
  }

  deliveries.sort((a, b) => a.at - b.at || order.get(a)! - order.get(b)!);
  for (const x of deliveries) {
    stats.deliveries++;
    if (x.redelivery) stats.redeliveries++;
    else {
      stats.distinct++;
      stats.byType[x.event.type]++;
    }
  }

  // Steps: one ingest call per stepMs window (clock = the window's last arrival), resets every resetEveryMs.
  const steps: WorkloadStep[] = [];
  let idx = 0;
  let nextReset = start + o.resetEveryMs;
  for (let windowEnd = start + o.stepMs; idx < deliveries.length || windowEnd <= end; windowEnd += o.stepMs) {
    const batch: Delivery[] = [];
    while (idx < deliveries.length && deliveries[idx].at <= windowEnd) batch.push(deliveries[idx++]);
    while (nextReset <= windowEnd - o.stepMs) {
      steps.push({ kind: 'resets', at: nextReset });
      nextReset += o.resetEveryMs;
    }
    if (batch.length) steps.push({ kind: 'ingest', at: batch[batch.length - 1].at, deliveries: batch });
  }
  while (nextReset <= end) {
    steps.push({ kind: 'resets', at: nextReset });
    nextReset += o.resetEveryMs;
  }
  steps.push({ kind: 'resets', at: end });

  return { options: o, spaceIds, deliveries, steps, start, end, stats };
}

