/**
 * The fault run's workload (issue 7), in wall-clock time: the service under test runs with the real
 * clock, so subscriptions are dated so that period boundaries fall DURING the run, and usage is
 * dated "now" (or in a closed period for late events). Generated phase by phase, with a seeded PRNG,
 * and checked against the reference model (test/support/reference-model.ts), which every valid
 * event is added to:
 *
 *  1. subscriptions of every Space (some never subscribe: free from the epoch); anchors either put a
 *     boundary inside the run, or lie weeks/months back (month-end anchors: clamping);
 *  2. usage, part A (late events included). Spaces that will be upgraded stay under 80 % of their
 *     limits here, so no threshold fires before the upgrade and none is re-armed (every threshold
 *     then fires exactly once per (Space, pool, period, threshold));
 *  3. upgrades (same family: keeps the period and its usage; weekly -> monthly or leaving free:
 *     a new period at the change);
 *  4. usage, part B.
 *
 * Each valid event is delivered 1-3 times (the extra copies later in the phase, some with an empty
 * key so they land on another partition); poison messages (poison.ts) are produced exactly once
 * each and carry a unique token in their bytes.
 */
import type { Cycle, InboundEvent, Limits, Plan } from '@metering/domain';
import { ReferenceModel, loadRefCatalog, refAddMonths } from '../reference-model';
import { type WorkloadCatalog, workloadCatalog } from './catalog';
import { bodyOf, customLimits, generationPerformed, iso, randomUsage, subscriptionChanged } from './events';
import { type OutMsg, type TopicKind, poisonMessage } from './poison';
import { type Draw, draws, heavyTailWeight, pickWeighted, prng } from './random';

const DAY = 86_400_000;
const WEEK = 7 * DAY;

interface SpacePlan {
  id: string;
  weight: number;
  /** null: never subscribes. */
  sub: { plan: Plan; cycle: Cycle; effectiveAt: number; customLimits?: Limits } | null;
  /** Upgrade in phase 3. */
  upgrade: boolean;
  /** Its anchor puts a reset boundary inside the run's reset window. */
  during?: boolean;
  /** Phase-2 image credits still allowed (upgrade Spaces only). */
  budget: number;
}

export interface FaultWorkloadOptions {
  seed: number;
  spaces: number;
  /** Unique valid events (subscriptions + upgrades + usage). */
  events: number;
  /** Boundaries of "during" anchors fall in [t0 + from, t0 + to]. */
  resetWindowMs: [number, number];
  poisonRate: number;
  lateRate: number;
  tag: string;
}

export class TortureWorkload {
  readonly model: ReferenceModel;
  readonly rand: () => number;
  readonly plans: SpacePlan[];
  readonly stats = { unique: 0, deliveries: 0, poison: 0, late: 0, upgrades: 0, subscriptions: 0, usage: 0, duringAnchors: 0, monthEndAnchors: 0, emptyKeyCopies: 0 };
  private readonly d: Draw;
  private readonly cat: WorkloadCatalog = workloadCatalog();
  private seq = 0;
  private poisonSeq = 0;

  constructor(readonly o: FaultWorkloadOptions, readonly t0: number) {
    this.model = new ReferenceModel(loadRefCatalog());
    this.rand = prng(o.seed);
    const d = (this.d = draws(this.rand));
    const r = this.rand;
    this.plans = Array.from({ length: o.spaces }, (_, i) => {
      const id = `tt-${o.tag}-${String(i).padStart(5, '0')}`;
      const duringBefore = this.stats.duringAnchors;
      const weight = heavyTailWeight(d);
      const x = r();
      let sub: SpacePlan['sub'] = null;
      if (x >= 0.07) {
        const pair = x < 0.12 ? { plan: 'free' as const, cycle: 'monthly' as const } : d.pick(this.cat.paidPairs);
        const limits = pair.plan === 'enterprise' ? customLimits(d) : undefined;
        const weekly = pair.cycle === 'weekly' && pair.plan !== 'free';
        let effectiveAt: number;
        if (pair.plan !== 'free' && r() < 0.45) {
          // A boundary during the run: B in the reset window, E = B - (k+1) periods.
          const b = t0 + o.resetWindowMs[0] + Math.floor(r() * (o.resetWindowMs[1] - o.resetWindowMs[0]));
          const k = Math.floor(r() * 3);
          effectiveAt = weekly ? b - (k + 1) * WEEK : refAddMonths(b, -(k + 1));
          this.stats.duringAnchors++;
        } else if (!weekly && r() < 0.5) {
          // Month-end anchor 1-4 months back (29th-31st): clamped boundaries.
          const t = new Date(t0);
          const back = 1 + Math.floor(r() * 4);
          const y = t.getUTCFullYear();
          const m = t.getUTCMonth() - back;
          const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
          const day = Math.max(29, last - Math.floor(r() * 3));
          effectiveAt = Date.UTC(y, m, Math.min(day, last)) + Math.floor(r() * DAY);
          this.stats.monthEndAnchors++;
        } else effectiveAt = t0 - Math.floor((8 + r() * 60) * DAY);
        sub = { ...pair, effectiveAt, customLimits: limits };
      }
      return { id, weight, sub, upgrade: false, budget: 0, during: sub !== null && this.stats.duringAnchors > duringBefore };
    });
    // Keep the run clear of boundaries of "past" anchors (none within 3 h of t0), so only the
    // "during" anchors reset during the run.
    for (const p of this.plans) {
      if (!p.sub) continue;
      for (let tries = 0; tries < 10; tries++) {
        const probe = new ReferenceModel(this.model.catalog);
        probe.add(subscriptionChanged({ eventId: 'x', spaceId: p.id, ...p.sub }));
        const bs = probe.resets(p.id, t0 + 3 * 3_600_000).filter((b) => b > t0 - 60_000);
        const during = bs.some((b) => b >= t0 + o.resetWindowMs[0] && b <= t0 + o.resetWindowMs[1]);
        if (bs.length === 0 || during) break;
        p.sub.effectiveAt -= DAY;
      }
    }
    // Upgrades: a quarter of the subscribed Spaces that have somewhere to go, among those whose
    // boundary does not fall in the run. An upgrade that changes the reset family and is stored
    // only after a boundary it removes (consumers killed, store down) finds that boundary's reset
    // already recorded: events are facts, so the reset stays and balances follow the final
    // timeline. The model could not predict that race, so the run keeps the two apart.
    for (const p of this.plans) if (p.sub && !p.during && this.upgradeOf(p) && r() < 0.25) p.upgrade = true;
  }

  private upgradeOf(p: SpacePlan): { plan: Plan; cycle: Cycle } | null {
    const s = p.sub!;
    const { rank, pairs } = this.cat;
    if (s.plan === 'enterprise') return null;
    if (s.plan === 'free') return { plan: 'pro', cycle: 'monthly' };
    if (s.cycle === 'weekly') return { plan: s.plan === 'pro' ? 'max' : 'ultra', cycle: 'monthly' };
    const higher = pairs.find((x) => x.plan !== 'enterprise' && x.cycle === s.cycle && rank(x.plan) > rank(s.plan));
    if (higher) return higher;
    return s.cycle === 'monthly' ? { plan: s.plan, cycle: 'yearly' } : null;
  }

  /** Phase 1: every subscription. */
  phaseSubscriptions(): OutMsg[] {
    const valid: OutMsg[] = [];
    for (const p of this.plans) {
      if (!p.sub) continue;
      valid.push(this.accept(subscriptionChanged({ eventId: `${p.id}-sub-0`, spaceId: p.id, ...p.sub })));
      this.stats.subscriptions++;
      if (p.upgrade) {
        const lim = this.model.segmentAt(p.id, this.t0).limits;
        p.budget = Math.max(0, Math.ceil(lim.ai_image_credits * 0.8) - 1);
      }
    }
    return this.deliver(valid, 'sub');
  }

  /** Phase 3: upgrades, effective now. */
  phaseUpgrades(now: number): OutMsg[] {
    const valid: OutMsg[] = [];
    for (const p of this.plans) {
      if (!p.upgrade) continue;
      valid.push(this.accept(subscriptionChanged({ eventId: `${p.id}-sub-1`, spaceId: p.id, ...this.upgradeOf(p)!, effectiveAt: now - 1000 })));
      this.stats.upgrades++;
    }
    return this.deliver(valid, 'sub');
  }

  upgradeCount(): number {
    return this.plans.filter((p) => p.upgrade).length;
  }

  /** Phases 2 and 4: `n` usage events, dated around `now` (late ones in a closed period). */
  phaseUsage(n: number, now: number, beforeUpgrades: boolean): OutMsg[] {
    const { d, rand: r } = this;
    const weights = this.plans.map((p) => p.weight);
    const total = weights.reduce((a, b) => a + b, 0);
    const valid: OutMsg[] = [];
    for (let made = 0, guard = 0; made < n && guard < n * 20; guard++) {
      const p = this.plans[pickWeighted(d, weights, total)];
      const eventId = `${p.id}-u-${this.seq++}`;
      const userId = `user-${d.int(1, 5)}`;
      let occurredAt = now - Math.floor(r() * 20_000);
      let late = false;
      if (p.sub && r() < this.o.lateRate) {
        // A closed period: between 20 days before the subscription and the start of the period in force at t0.
        const p0 = this.model.periodAt(p.id, this.t0).start;
        // ... and inside the corrections window (35 days): older usage is refused (too_late).
        const from = Math.max(p.sub.effectiveAt - 20 * DAY, now - 30 * DAY, 86_400_000);
        if (p0 - 60_000 > from) {
          occurredAt = from + Math.floor(r() * (p0 - 60_000 - from));
          late = true;
        }
      }
      const base = { eventId, spaceId: p.id, userId, occurredAt };
      let e: InboundEvent;
      if (beforeUpgrades && p.upgrade && !late) {
        // Upgrade Spaces before their upgrade: only ai_shadows within the budget (under 80 %).
        if (p.budget < 1) continue;
        const g = Math.min(p.budget, d.int(1, 2));
        p.budget -= g;
        e = generationPerformed(base, { feature: 'ai_shadows', medium: 'image', generations: g });
      } else e = randomUsage(d, this.cat, base, `b-${eventId}`);
      if (late) this.stats.late++;
      this.stats.usage++;
      valid.push(this.accept(e));
      made++;
    }
    const gen = this.deliver(valid.filter((m) => m.topic === 'gen'), 'gen');
    const batch = this.deliver(valid.filter((m) => m.topic === 'batch'), 'batch');
    return interleave(gen, batch, r);
  }

  private accept(e: InboundEvent): OutMsg {
    this.model.add(e);
    this.stats.unique++;
    return { topic: e.type === 'subscription-changed' ? 'sub' : e.type === 'generation-performed' ? 'gen' : 'batch', key: e.spaceId, value: JSON.stringify(bodyOf(e)) };
  }

  /** 1-3 copies of every valid message (extra copies later in the list), plus this phase's share of poison. */
  private deliver(valid: OutMsg[], topic: TopicKind): OutMsg[] {
    const r = this.rand;
    const out: OutMsg[] = [...valid];
    const extra: OutMsg[] = [];
    for (const m of valid) {
      const c = r();
      const copies = c < 0.5 ? 0 : c < 0.8 ? 1 : 2;
      for (let k = 0; k < copies; k++) {
        const emptyKey = r() < 0.15;
        if (emptyKey) this.stats.emptyKeyCopies++;
        extra.push({ ...m, key: emptyKey ? '' : m.key });
      }
    }
    for (const m of extra) out.splice(Math.floor(r() * (out.length + 1)), 0, m);
    const poisonCount = Math.ceil(valid.length * this.o.poisonRate);
    for (let k = 0; k < poisonCount; k++) {
      const token = `torture-poison-${this.o.tag}-${this.poisonSeq++}`;
      const spaceId = this.d.pick(this.plans).id;
      this.stats.poison++;
      out.splice(Math.floor(r() * (out.length + 1)), 0, poisonMessage(this.d, topic, token, spaceId, Date.now()));
    }
    this.stats.deliveries += valid.length + extra.length;
    return out;
  }
}

function interleave<T>(a: T[], b: T[], r: () => number): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && r() < a.length / (a.length + b.length))) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

