/**
 * The fault run's workload (issue 7), in wall-clock time: the service under test runs with the real
 * clock, so subscriptions are dated so that period boundaries fall DURING the run, and usage is
 * dated "now" (or in a closed period for late events). Generated phase by phase, with a seeded PRNG:
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
 * key so they land on another partition); poison messages are produced exactly once each and carry
 * a unique token in their bytes.
 */
import { type RefInbound, type RefLimits, ReferenceModel, loadRefCatalog, refAddMonths } from '../../test/support/reference-model';

import { prng } from '../../test/support/prng';
import { type InboundKind, applyMutation, certainPoison, drawWith, hostileText, toJson } from '../../test/support/fuzz-arbitraries';

export type TopicKind = 'sub' | 'gen' | 'batch';

export interface OutMsg {
  topic: TopicKind;
  key: string;
  value: string;
  /** Set on poison messages: the token in its bytes and what its dead letter's errors must mention. */
  poison?: { token: string; kind: string; expect: string };
}

const DAY = 86_400_000;
const WEEK = 7 * DAY;

interface SpacePlan {
  id: string;
  weight: number;
  /** null: never subscribes. */
  sub: { plan: string; cycle: string; effectiveAt: number; customLimits?: RefLimits } | null;
  /** Upgrade in phase 3. */
  upgrade: boolean;
  /** Its anchor puts a reset boundary inside the run's reset window. */
  during?: boolean;
  /** Phase-2 image credits still allowed (upgrade Spaces only). */
  budget: number;
}

export interface WorkloadOptions {
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
  private seq = 0;
  private poisonSeq = 0;

  constructor(readonly o: WorkloadOptions, readonly t0: number) {
    this.model = new ReferenceModel(loadRefCatalog());
    this.rand = prng(o.seed);
    const r = this.rand;
    const cat = this.model.catalog;
    const pairs: { plan: string; cycle: string }[] = [];
    for (const [plan, cycles] of Object.entries(cat.plans)) if (plan !== 'free') for (const cycle of Object.keys(cycles)) pairs.push({ plan, cycle });
    for (const cycle of cat.enterpriseCycles) pairs.push({ plan: 'enterprise', cycle });
    this.plans = Array.from({ length: o.spaces }, (_, i) => {
      const id = `tt-${o.tag}-${String(i).padStart(5, '0')}`;
      const duringBefore = this.stats.duringAnchors;
      const weight = 1 / Math.pow(r() + 0.05, 1.1);
      const x = r();
      let sub: SpacePlan['sub'] = null;
      if (x >= 0.07) {
        const pair = x < 0.12 ? { plan: 'free', cycle: 'monthly' } : pairs[Math.floor(r() * pairs.length)];
        const customLimits = pair.plan === 'enterprise' ? { ai_image_credits: pick(r, [0, 40, 200, 1000]), ai_video_credits: pick(r, [0, 10, 60]), batch_exports: pick(r, [0, 150, 2000]) } : undefined;
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
          const d = new Date(t0);
          const back = 1 + Math.floor(r() * 4);
          const y = d.getUTCFullYear();
          const m = d.getUTCMonth() - back;
          const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
          const day = Math.max(29, last - Math.floor(r() * 3));
          effectiveAt = Date.UTC(y, m, Math.min(day, last)) + Math.floor(r() * DAY);
          this.stats.monthEndAnchors++;
        } else effectiveAt = t0 - Math.floor((8 + r() * 60) * DAY);
        sub = { ...pair, effectiveAt, customLimits };
      }
      return { id, weight, sub, upgrade: false, budget: 0, during: sub !== null && this.stats.duringAnchors > duringBefore };
    });
    // Keep the run clear of boundaries of "past" anchors (none within 3 h of t0), so only the
    // "during" anchors reset during the run.
    for (const p of this.plans) {
      if (!p.sub) continue;
      for (let tries = 0; tries < 10; tries++) {
        const probe = new ReferenceModel(this.model.catalog);
        probe.add({ type: 'subscription-changed', eventId: 'x', spaceId: p.id, plan: p.sub.plan, cycle: p.sub.cycle, effectiveAt: iso(p.sub.effectiveAt), customLimits: p.sub.customLimits });
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

  private upgradeOf(p: SpacePlan): { plan: string; cycle: string } | null {
    const s = p.sub!;
    const order = ['free', 'pro', 'max', 'ultra', 'ultra_2x', 'ultra_5x', 'ultra_10x'];
    const cat = this.model.catalog.plans;
    if (s.plan === 'enterprise') return null;
    if (s.plan === 'free') return { plan: 'pro', cycle: 'monthly' };
    if (s.cycle === 'weekly') return { plan: s.plan === 'pro' ? 'max' : 'ultra', cycle: 'monthly' };
    const higher = order.slice(order.indexOf(s.plan) + 1).find((pl) => cat[pl]?.[s.cycle]);
    if (higher) return { plan: higher, cycle: s.cycle };
    return s.cycle === 'monthly' ? { plan: s.plan, cycle: 'yearly' } : null;
  }

  /** Phase 1: every subscription. */
  phaseSubscriptions(): OutMsg[] {
    const valid: OutMsg[] = [];
    for (const p of this.plans) {
      if (!p.sub) continue;
      const e: RefInbound = { type: 'subscription-changed', eventId: `${p.id}-sub-0`, spaceId: p.id, plan: p.sub.plan, cycle: p.sub.cycle, effectiveAt: iso(p.sub.effectiveAt), ...(p.sub.customLimits ? { customLimits: p.sub.customLimits } : {}) };
      valid.push(this.accept(e));
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
      const to = this.upgradeOf(p)!;
      valid.push(this.accept({ type: 'subscription-changed', eventId: `${p.id}-sub-1`, spaceId: p.id, plan: to.plan, cycle: to.cycle, effectiveAt: iso(now - 1000) }));
      this.stats.upgrades++;
    }
    return this.deliver(valid, 'sub');
  }

  upgradeCount(): number {
    return this.plans.filter((p) => p.upgrade).length;
  }

  /** Phases 2 and 4: `n` usage events, dated around `now` (late ones in a closed period). */
  phaseUsage(n: number, now: number, beforeUpgrades: boolean): OutMsg[] {
    const r = this.rand;
    const cat = this.model.catalog;
    const total = this.plans.reduce((a, p) => a + p.weight, 0);
    const features = Object.entries(cat.features);
    const platforms = Object.entries(cat.perBatchCap);
    const valid: OutMsg[] = [];
    for (let made = 0, guard = 0; made < n && guard < n * 20; guard++) {
      let x = r() * total;
      let i = 0;
      while (x > this.plans[i].weight && i < this.plans.length - 1) x -= this.plans[i++].weight;
      const p = this.plans[i];
      const eventId = `${p.id}-u-${this.seq++}`;
      const userId = `user-${1 + Math.floor(r() * 5)}`;
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
      const limited = beforeUpgrades && p.upgrade && !late;
      let e: RefInbound;
      if (limited) {
        // Upgrade Spaces before their upgrade: only ai_shadows within the budget (under 80 %).
        if (p.budget < 1) continue;
        const g = Math.min(p.budget, 1 + Math.floor(r() * 2));
        p.budget -= g;
        e = { type: 'generation-performed', eventId, spaceId: p.id, userId, feature: 'ai_shadows', medium: 'image', generations: g, occurredAt: iso(occurredAt) };
      } else if (r() < 0.7) {
        const [feature, f] = features[Math.floor(r() * features.length)];
        const inBatch = r() < 0.2;
        e = { type: 'generation-performed', eventId, spaceId: p.id, userId, feature, medium: f.medium, generations: 1 + Math.floor(r() * 3), occurredAt: iso(occurredAt), ...(inBatch ? { batchId: `b-${eventId}`, platform: platforms[Math.floor(r() * platforms.length)][0] } : {}) };
      } else {
        const [platform, cap] = platforms[Math.floor(r() * platforms.length)];
        const images = r() < 0.05 ? cap : Math.max(1, Math.floor(cap * r() * r() * 0.5));
        e = { type: 'batch-exported', eventId, spaceId: p.id, userId, batchId: `b-${eventId}`, images, platform, occurredAt: iso(occurredAt) };
      }
      if (late) this.stats.late++;
      this.stats.usage++;
      valid.push(this.accept(e));
      made++;
    }
    const gen = this.deliver(valid.filter((m) => m.topic === 'gen'), 'gen');
    const batch = this.deliver(valid.filter((m) => m.topic === 'batch'), 'batch');
    return interleave(gen, batch, r);
  }

  private accept(e: RefInbound): OutMsg {
    this.model.add(e);
    this.stats.unique++;
    const { type, ...body } = e;
    return { topic: type === 'subscription-changed' ? 'sub' : type === 'generation-performed' ? 'gen' : 'batch', key: e.spaceId, value: JSON.stringify(body) };
  }

  /** 1-3 copies of every valid message (extra copies later in the list), plus this phase's share of poison. */
  private deliver(valid: OutMsg[], topic: TopicKind): OutMsg[] {
    const r = this.rand;
    const out: (OutMsg | null)[] = [...valid];
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
    for (let k = 0; k < poisonCount; k++) out.splice(Math.floor(r() * (out.length + 1)), 0, this.poison(topic));
    this.stats.deliveries += valid.length + extra.length;
    return out as OutMsg[];
  }

  private poison(topic: TopicKind): OutMsg {
    const r = this.rand;
    const token = `torture-poison-${this.o.tag}-${this.poisonSeq++}`;
    const p = this.plans[Math.floor(r() * this.plans.length)];
    const now = iso(Date.now());
    this.stats.poison++;
    const gen = { eventId: token, spaceId: p.id, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: now };
    const batch = { eventId: token, spaceId: p.id, userId: 'u', batchId: 'b', images: 3, platform: 'web', occurredAt: now };
    const sub = { eventId: token, spaceId: p.id, plan: 'pro', cycle: 'monthly', effectiveAt: now };
    const base = topic === 'gen' ? gen : topic === 'batch' ? batch : sub;
    const inbound: InboundKind = topic === 'gen' ? 'generation-performed' : topic === 'batch' ? 'batch-exported' : 'subscription-changed';
    const kinds: [string, () => { key?: string; value: string; expect: string }][] = [
      ['not-json', () => ({ value: `{"eventId": "${token}", broken`, expect: '"json"' })],
      // Drawn from the fuzz test's generators (test/support/fuzz-arbitraries.ts): hostile bytes, and
      // valid bodies broken by a wrong JSON type, a prototype-named key or deep nesting.
      ['fuzz-bytes', () => ({ value: `${token} ${drawWith(hostileText, r)}`, expect: '"json"' })],
      [
        'fuzz-mutation',
        () => {
          const p = drawWith(certainPoison(inbound), r);
          return { value: toJson(applyMutation(base, p.mutation)), expect: JSON.stringify(p.expect).slice(1, -1) };
        },
      ],
      ['key-not-spaceId', () => ({ key: `${p.id}-other`, value: JSON.stringify(base), expect: 'key_is_spaceId' })],
      ['missing-spaceId', () => ({ value: JSON.stringify({ ...base, spaceId: undefined }), expect: 'spaceId' })],
      ['wrong-type-eventId', () => ({ value: JSON.stringify({ ...base, eventId: 12345 }).replace('{', `{"_t":"${token}",`), expect: 'eventId' })],
      ...(topic === 'gen'
        ? ([
            ['unknown-feature', () => ({ value: JSON.stringify({ ...gen, feature: 'ai_teleport' }), expect: 'feature' })],
            ['wrong-type-generations', () => ({ value: JSON.stringify({ ...gen, generations: 'two' }), expect: 'generations' })],
            ['medium-mismatch', () => ({ value: JSON.stringify({ ...gen, feature: 'ai_video', medium: 'image' }), expect: 'medium' })],
            ['missing-userId', () => ({ value: JSON.stringify({ ...gen, userId: undefined }), expect: 'userId' })],
          ] as [string, () => { key?: string; value: string; expect: string }][])
        : topic === 'batch'
          ? ([
              ['over-cap', () => ({ value: JSON.stringify({ ...batch, images: 101 }), expect: 'per_batch_cap' })],
              ['bad-instant', () => ({ value: JSON.stringify({ ...batch, occurredAt: 'yesterday' }), expect: 'occurredAt' })],
            ] as [string, () => { key?: string; value: string; expect: string }][])
          : ([
              ['plan-cycle-missing', () => ({ value: JSON.stringify({ ...sub, plan: 'ultra', cycle: 'weekly' }), expect: 'plan_cycle_exists' })],
              ['enterprise-without-limits', () => ({ value: JSON.stringify({ ...sub, plan: 'enterprise' }), expect: 'customLimits' })],
            ] as [string, () => { key?: string; value: string; expect: string }][])),
    ];
    // Half the poison comes from the fuzz generators, half from the named cases above.
    const fuzz = kinds.filter(([k]) => k.startsWith('fuzz-'));
    const named = kinds.filter(([k]) => !k.startsWith('fuzz-'));
    const from = r() < 0.5 ? fuzz : named;
    const [kind, make] = from[Math.floor(r() * from.length)];
    const m = make();
    return { topic, key: m.key ?? p.id, value: m.value, poison: { token, kind, expect: m.expect } };
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

function pick<T>(r: () => number, xs: T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
