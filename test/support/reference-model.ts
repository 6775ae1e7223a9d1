/**
 * An independent reference model of a Space's balances (issue 7): a plain fold over the unique,
 * valid inbound events, written apart from the decider. It imports NOTHING from libs/domain: it
 * reads the catalog data file for prices and limits and does its own period math (weekly periods,
 * month-end clamping from the anchor) and its own attribution, following README "Rules decided
 * where the brief is silent":
 *
 *  - a Space that never subscribed is free from the epoch (never resets);
 *  - subscriptions sorted by effectiveAt; a change within the same reset family keeps the anchor,
 *    a change of family (weekly <-> monthly/yearly, to or from free) starts a new anchor at its
 *    effectiveAt (and a new run of periods);
 *  - a period comes from its run's anchor, cut to the run's bounds;
 *  - a change of family in the middle of a period keeps that period's usage (issue 13, rule 4): the
 *    new run's first period starts where the interrupted period started, and the interrupted period
 *    is that same period. Not when the change falls on the interrupted period's natural end, nor
 *    when it leaves a free run whose period started with the run (never paid, or went free at a
 *    renewal);
 *  - usage counts in the period that contains its occurredAt (late events in closed periods);
 *  - the limits of the running period are those of the subscription in force now;
 *  - a reset is every period start inside a run except the run's own start.
 *
 * Keep the workload inside these rules (no two subscriptions of a Space at the same instant, no
 * subscription dated in the future, one catalog version).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type RefPool = 'ai_image_credits' | 'ai_video_credits' | 'batch_exports';
export const REF_POOLS: readonly RefPool[] = ['ai_image_credits', 'ai_video_credits', 'batch_exports'];
export type RefLimits = Record<RefPool, number>;
type Family = 'weekly' | 'monthly' | 'never';

export interface RefCatalog {
  plans: Record<string, Record<string, RefLimits>>;
  enterpriseCycles: string[];
  features: Record<string, { medium: 'image' | 'video'; credits: number }>;
  perBatchCap: Record<string, number>;
  thresholds: number[];
}

/** The (only) catalog version of the data file the service starts with. */
export function loadRefCatalog(file = path.resolve(__dirname, '..', '..', 'libs', 'domain', 'src', 'catalog', 'default-catalog.json')): RefCatalog {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { versions: RefCatalog[] };
  if (json.versions.length !== 1) throw new Error('the reference model knows one catalog version only');
  return json.versions[0];
}

export type RefInbound =
  | { type: 'subscription-changed'; eventId: string; spaceId: string; plan: string; cycle: string; effectiveAt: string; customLimits?: RefLimits }
  | { type: 'generation-performed'; eventId: string; spaceId: string; userId: string; feature: string; medium: string; generations: number; occurredAt: string; batchId?: string; platform?: string }
  | { type: 'batch-exported'; eventId: string; spaceId: string; userId: string; batchId: string; images: number; platform: string; occurredAt: string };

const WEEK = 7 * 86_400_000;

/** Own month arithmetic: the anchor's day of month and time of day, `months` later, clamped to the month's last day. */
export function refAddMonths(anchor: number, months: number): number {
  const d = new Date(anchor);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  const tod = d.getUTCHours() * 3_600_000 + d.getUTCMinutes() * 60_000 + d.getUTCSeconds() * 1000 + d.getUTCMilliseconds();
  let ty = y + Math.trunc((m + months) / 12);
  let tm = (m + months) % 12;
  if (tm < 0) {
    tm += 12;
    ty -= 1;
  }
  const last = [31, (ty % 4 === 0 && ty % 100 !== 0) || ty % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][tm];
  return Date.UTC(ty, tm, Math.min(day, last)) + tod;
}

function familyOf(plan: string, cycle: string): Family {
  if (plan === 'free') return 'never';
  return cycle === 'weekly' ? 'weekly' : 'monthly';
}

/** k-th period start of an anchor (k >= 0). */
function nthStart(anchor: number, family: Exclude<Family, 'never'>, k: number): number {
  return family === 'weekly' ? anchor + k * WEEK : refAddMonths(anchor, k);
}

interface RefSegment {
  effectiveAt: number;
  plan: string;
  cycle: string;
  limits: RefLimits;
  family: Family;
  anchor: number;
}

interface RefRun {
  anchor: number;
  family: Family;
  start: number;
  end: number | null;
  /** Start of the run's first period (before `start` when it kept the interrupted period). */
  firstStart: number;
}

export interface RefPeriod {
  start: number;
  end: number | null;
}

export interface RefSpace {
  spaceId: string;
  segments: RefSegment[];
  runs: RefRun[];
  /** Used per period start (epoch ms). */
  used: Map<number, RefLimits>;
  /** Usage events per period start. */
  usageEvents: Map<number, number>;
  usageCount: number;
  subscriptionCount: number;
}

const zero = (): RefLimits => ({ ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 });

/** The period of a run's anchor containing t, before any cut: [start, end). */
function naturalPeriod(run: RefRun, t: number): { start: number; end: number | null } {
  if (run.family === 'never') return { start: run.start, end: null };
  // Index of the period from the anchor: estimate, then correct.
  let k = run.family === 'weekly' ? Math.floor((t - run.anchor) / WEEK) : Math.round((t - run.anchor) / (30.44 * 86_400_000));
  while (k > 0 && nthStart(run.anchor, run.family, k) > t) k--;
  while (nthStart(run.anchor, run.family, k + 1) <= t) k++;
  return { start: nthStart(run.anchor, run.family, k), end: nthStart(run.anchor, run.family, k + 1) };
}

function periodIn(runs: RefRun[], t: number): RefPeriod {
  let i = 0;
  for (let j = 0; j < runs.length; j++) if (runs[j].start <= t) i = j;
  const run = runs[i];
  const natural = naturalPeriod(run, t);
  const start = natural.start <= run.start ? run.firstStart : natural.start;
  let end = natural.end;
  if (run.end !== null && (end === null || end > run.end)) end = run.end;
  const next = runs[i + 1];
  // cut by a change that kept it: the period goes on as the next run's first period
  if (next && end === next.start && next.firstStart < next.start) return periodIn(runs, next.start);
  return { start, end };
}

export class ReferenceModel {
  readonly spaces = new Map<string, RefSpace>();
  private readonly seen = new Set<string>();
  private readonly subs = new Map<string, RefInbound[]>();
  private readonly usage = new Map<string, RefInbound[]>();

  constructor(readonly catalog: RefCatalog) {}

  /** Adds one unique valid inbound event (a second event with the same id is ignored). */
  add(e: RefInbound): void {
    if (this.seen.has(e.eventId)) return;
    this.seen.add(e.eventId);
    const into = e.type === 'subscription-changed' ? this.subs : this.usage;
    if (!into.has(e.spaceId)) into.set(e.spaceId, []);
    into.get(e.spaceId)!.push(e);
    this.spaces.delete(e.spaceId); // folded again on demand
  }

  spaceIds(): string[] {
    return [...new Set([...this.subs.keys(), ...this.usage.keys()])];
  }

  /** Folds a Space: its timeline, runs, and usage attributed to the periods of the final timeline. */
  space(spaceId: string): RefSpace {
    const cached = this.spaces.get(spaceId);
    if (cached) return cached;
    const subs = [...(this.subs.get(spaceId) ?? [])] as Extract<RefInbound, { type: 'subscription-changed' }>[];
    subs.sort((a, b) => Date.parse(a.effectiveAt) - Date.parse(b.effectiveAt));
    const segments: RefSegment[] = [];
    let prev: { family: Family; anchor: number } = { family: 'never', anchor: 0 };
    for (const s of subs) {
      const at = Date.parse(s.effectiveAt);
      const family = familyOf(s.plan, s.cycle);
      const limits = s.plan === 'enterprise' ? { ...s.customLimits! } : { ...this.catalog.plans[s.plan][s.cycle] };
      const anchor = family === prev.family ? prev.anchor : at;
      segments.push({ effectiveAt: at, plan: s.plan, cycle: s.cycle, limits, family, anchor });
      prev = { family, anchor };
    }
    const runs: RefRun[] = [{ anchor: 0, family: 'never', start: 0, end: null, firstStart: 0 }];
    for (const s of segments) {
      const last = runs[runs.length - 1];
      if (last.anchor === s.anchor && last.family === s.family) continue;
      last.end = s.effectiveAt;
      const interrupted = periodIn(runs, s.effectiveAt - 1);
      const atNaturalEnd = naturalPeriod(last, s.effectiveAt - 1).end === s.effectiveAt;
      const cleanFree = last.family === 'never' && interrupted.start === last.start;
      const firstStart = atNaturalEnd || cleanFree ? s.effectiveAt : interrupted.start;
      runs.push({ anchor: s.anchor, family: s.family, start: s.effectiveAt, end: null, firstStart });
    }
    const used = new Map<number, RefLimits>();
    const usageEvents = new Map<number, number>();
    const usage = this.usage.get(spaceId) ?? [];
    for (const u of usage) {
      const t = Date.parse((u as { occurredAt: string }).occurredAt);
      const p = periodIn(runs, t);
      if (!used.has(p.start)) used.set(p.start, zero());
      const row = used.get(p.start)!;
      if (u.type === 'generation-performed') {
        const f = this.catalog.features[u.feature];
        row[f.medium === 'image' ? 'ai_image_credits' : 'ai_video_credits'] += f.credits * u.generations;
      } else if (u.type === 'batch-exported') row.batch_exports += u.images;
      usageEvents.set(p.start, (usageEvents.get(p.start) ?? 0) + 1);
    }
    const s: RefSpace = { spaceId, segments, runs, used, usageEvents, usageCount: usage.length, subscriptionCount: subs.length };
    this.spaces.set(spaceId, s);
    return s;
  }

  /** The subscription in force at t (free from the epoch before the first). */
  segmentAt(spaceId: string, t: number): { plan: string; cycle: string; limits: RefLimits } {
    const s = this.space(spaceId);
    let found: { plan: string; cycle: string; limits: RefLimits } = { plan: 'free', cycle: 'monthly', limits: { ...this.catalog.plans.free.monthly } };
    for (const seg of s.segments) if (seg.effectiveAt <= t) found = seg;
    return found;
  }

  periodAt(spaceId: string, t: number): RefPeriod {
    return periodIn(this.space(spaceId).runs, t);
  }

  /** What the usage screen must show at `now`. */
  view(spaceId: string, now: number): { plan: string; cycle: string; periodStart: number; periodEnd: number | null; used: RefLimits; limits: RefLimits } {
    const p = this.periodAt(spaceId, now);
    const seg = this.segmentAt(spaceId, now);
    return { plan: seg.plan, cycle: seg.cycle, periodStart: p.start, periodEnd: p.end, used: { ...(this.space(spaceId).used.get(p.start) ?? zero()) }, limits: { ...seg.limits } };
  }

  /** Reset boundaries in (-inf, until]: every period start inside a run except the run's own start. */
  resets(spaceId: string, until: number): number[] {
    const out: number[] = [];
    for (const run of this.space(spaceId).runs) {
      if (run.family === 'never' || run.start > until) continue;
      for (let k = 1; ; k++) {
        const b = nthStart(run.anchor, run.family, k);
        if (b > until || (run.end !== null && b >= run.end)) break;
        if (b > run.start) out.push(b);
      }
    }
    return out;
  }

  /** True once `used` reaches `threshold` percent of `limit` (any use of a zero limit reaches all). */
  static reaches(used: number, limit: number, threshold: number): boolean {
    return used > 0 && used * 100 >= threshold * limit;
  }
}
