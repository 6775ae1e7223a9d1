/**
 * A Space's subscription timeline: the segments recorded by SubscriptionChanged events, sorted by
 * effectiveAt. Before the first segment a Space is on free (an implicit segment anchored at 0).
 * Consecutive segments with the same anchor and reset family form a run; periods are computed
 * inside a run from its anchor and cut where the run ends.
 */
import { type Catalog, type Cycle, type Limits, type Plan, catalogVersionAt, effectiveFromMs } from './catalog/catalog';
import { emptyLimits } from './catalog/pricing';
import type { SubscriptionChangedData } from './events';
import { type Period, type ResetFamily, periodContaining, periodIndexOf, periodStartAt } from './period';

export interface Segment {
  effectiveAt: number;
  plan: Plan;
  cycle: Cycle;
  limits: Limits;
  anchorAt: number;
  family: ResetFamily;
  /** Set while a change decided before its effectiveAt waits to be activated by the scheduler. */
  pendingSourceEventId?: string;
  /**
   * The change keeps the usage of the period it interrupts (`keepsUsage` on the event, recorded by
   * every decision since the rule existed; absent on older events, which keep their old meaning).
   */
  keepsUsage?: true;
}

export type Timeline = readonly Segment[];

/** The segment before any subscription: free, anchored at the epoch, with the catalog's free limits. */
export function implicitFreeSegment(catalog: Catalog, t: number): Segment {
  const limits = catalogVersionAt(catalog, t).plans.free.monthly ?? emptyLimits();
  return { effectiveAt: 0, plan: 'free', cycle: 'monthly', limits: { ...limits }, anchorAt: 0, family: 'never' };
}

/** Index of the segment in force at t, or -1 for the implicit free segment. */
export function segmentIndexAt(timeline: Timeline, t: number): number {
  let lo = 0;
  let hi = timeline.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (timeline[mid].effectiveAt <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export function segmentAt(timeline: Timeline, t: number, catalog: Catalog): Segment {
  const i = segmentIndexAt(timeline, t);
  return i < 0 ? implicitFreeSegment(catalog, t) : timeline[i];
}

/**
 * Inserts a segment (after every segment effective at or before it) and derives every anchor again:
 * a segment continues the previous one's anchor when both reset the same way (an upgrade keeps the
 * period), and starts a new anchor at its effectiveAt otherwise (a change of cycle, leaving or
 * joining free). Anchors depend only on the set of segments, never on the order they arrived in.
 */
export function insertSegment(timeline: Timeline, segment: Omit<Segment, 'anchorAt'> & { anchorAt?: number }): Segment[] {
  const out = timeline.map((s) => ({ ...s }));
  out.splice(segmentIndexAt(timeline, segment.effectiveAt) + 1, 0, { ...segment, limits: { ...segment.limits }, anchorAt: segment.effectiveAt });
  let previous: { family: ResetFamily; anchorAt: number } = { family: 'never', anchorAt: 0 };
  for (const s of out) {
    s.anchorAt = s.family === previous.family ? previous.anchorAt : s.effectiveAt;
    previous = s;
  }
  return out;
}

/**
 * The timeline after a SubscriptionChanged event. A change decided before its effectiveAt stays
 * pending until it is activated (see `withActivation`).
 */
export function withSubscriptionChange(timeline: Timeline, d: SubscriptionChangedData): Segment[] {
  const effectiveAt = Date.parse(d.effectiveAt);
  const pending = d.decidedAt !== undefined && Date.parse(d.decidedAt) < effectiveAt;
  return insertSegment(timeline, {
    effectiveAt,
    plan: d.plan,
    cycle: d.cycle,
    limits: { ...d.limits },
    family: d.resetFamily,
    ...(pending ? { pendingSourceEventId: d.sourceEventId } : {}),
    ...(d.keepsUsage ? { keepsUsage: true as const } : {}),
  });
}

/** The timeline after a SubscriptionActivated event: the change is no longer pending. */
export function withActivation(timeline: Timeline, sourceEventId: string): Segment[] {
  return timeline.map((s) => {
    if (s.pendingSourceEventId !== sourceEventId) return s;
    const { pendingSourceEventId: _done, ...rest } = s;
    return rest;
  });
}

const sameRun = (a: { anchorAt: number; family: ResetFamily }, b: { anchorAt: number; family: ResetFamily }) =>
  a.anchorAt === b.anchorAt && a.family === b.family;

const IMPLICIT_RUN = { anchorAt: 0, family: 'never' as ResetFamily };

interface Run {
  anchorAt: number;
  family: ResetFamily;
  start: number;
  /** Exclusive; null when the run is the last. */
  end: number | null;
  /**
   * Where the run's first period starts: `start`, or earlier when the change that started the run
   * interrupted a period and keeps its usage (`firstPeriodStart`).
   */
  firstStart: number;
}

/**
 * Where the first period of a run starting at `start` begins, after the run `prev` (which ends at
 * `start`). The one rule for a change of reset family (a cycle change, joining or leaving free) in
 * the middle of a period: **the new period keeps the usage of the period it interrupts**, so it
 * starts where that period started, and its reset dates count from the change. A flip (weekly ->
 * monthly -> weekly, or paid -> free -> paid) never hands out a fresh pool. A fresh period starts
 * at the change only when the change falls on a boundary of the interrupted period (a reset would
 * have started one anyway), when it leaves a free period that started with its own run (a Space that
 * never paid, or went free at a renewal: the free pool is not carried into a paid plan), or when the
 * change was recorded before the rule (`keepsUsage` absent).
 */
export function firstPeriodStart(prev: Run, start: number, keepsUsage: boolean): number {
  if (!keepsUsage) return start;
  const raw = periodContaining(prev.anchorAt, prev.family, start - 1);
  if (raw.end !== null && raw.end <= start) return start;
  const interruptedStart = Math.max(raw.start, prev.start) === prev.start ? prev.firstStart : Math.max(raw.start, prev.start);
  if (prev.family === 'never' && interruptedStart === prev.start) return start;
  return interruptedStart;
}

/** The runs of a timeline, in order, starting with the implicit free run when it is not continued. */
export function runsOf(timeline: Timeline): Run[] {
  const runs: Run[] = [{ ...IMPLICIT_RUN, start: 0, end: null, firstStart: 0 }];
  for (const s of timeline) {
    const last = runs[runs.length - 1];
    if (sameRun(last, s)) continue;
    if (s.effectiveAt <= last.start) {
      // A change at the very instant the previous run started replaces that run.
      const before = runs.length > 1 ? runs[runs.length - 2] : null;
      const firstStart = before ? firstPeriodStart(before, last.start, s.keepsUsage === true) : last.start;
      runs[runs.length - 1] = { anchorAt: s.anchorAt, family: s.family, start: last.start, end: null, firstStart };
      continue;
    }
    last.end = s.effectiveAt;
    runs.push({ anchorAt: s.anchorAt, family: s.family, start: s.effectiveAt, end: null, firstStart: firstPeriodStart(last, s.effectiveAt, s.keepsUsage === true) });
  }
  return runs;
}

/**
 * `periodAt` for one timeline, for asking many times (a fold keeps one per Space until the Space's
 * timeline changes): the same answers, without looking the timeline up on every call. It keeps the
 * timeline's runs and the last period found: the periods of one timeline never overlap, so that
 * one is the answer for every instant inside it.
 */
export class PeriodFinder {
  private readonly runs: Run[];
  private last: Period | null = null;

  constructor(readonly timeline: Timeline) {
    this.runs = runsOf(timeline);
  }

  /** The period that contains t (see `periodAt`). */
  at(t: number): Period {
    const last = this.last;
    if (last !== null && last.start <= t && (last.end === null || t < last.end)) return { start: last.start, end: last.end };
    const found = this.find(t);
    this.last = found;
    return { start: found.start, end: found.end };
  }

  private find(t: number): Period {
    const runs = this.runs;
    let i = 0;
    for (let j = 1; j < runs.length && runs[j].start <= t; j++) i = j;
    const run = runs[i];
    const raw = periodContaining(run.anchorAt, run.family, t);
    // The run's first period may start before the run (it keeps the usage of the period it interrupted).
    const start = raw.start <= run.start ? run.firstStart : raw.start;
    const end = raw.end === null ? run.end : run.end === null ? raw.end : Math.min(raw.end, run.end);
    // The run's last period, interrupted by a change that keeps its usage, is the next run's first period.
    const next = runs[i + 1];
    if (next !== undefined && end === next.start && next.firstStart < next.start) return this.find(next.start);
    return { start, end };
  }
}

/** One finder per timeline: timelines are immutable (`readonly`), so what is derived from one can be kept. */
const finders = new WeakMap<Timeline, PeriodFinder>();

/** The finder of a timeline (the same object for the same timeline). */
export function periodFinder(timeline: Timeline): PeriodFinder {
  let f = finders.get(timeline);
  if (!f) {
    f = new PeriodFinder(timeline);
    finders.set(timeline, f);
  }
  return f;
}

/**
 * The period that contains t: from the run's anchor, cut to the run's bounds; a run's first period
 * starts where the period it interrupted began when its change keeps that usage (`firstPeriodStart`).
 */
export function periodAt(timeline: Timeline, t: number): Period {
  return periodFinder(timeline).at(t);
}

/**
 * The limits that apply to a period as of `now`: those of the segment in force at `now`, clamped
 * into the period (an upgrade applies at once to the running period; a closed period keeps the
 * limits in force at its end; a future period takes those in force at its start). For a catalog
 * plan the allowance follows the catalog (`allowanceDuring`): a version that raises it applies at
 * once, one that cuts it from the Space's next period. Enterprise limits are the Space's own.
 */
export function limitsFor(timeline: Timeline, period: Period, now: number, catalog: Catalog): Segment {
  let t = Math.max(now, period.start);
  if (period.end !== null) t = Math.min(t, period.end - 1);
  const seg = segmentAt(timeline, t, catalog);
  if (seg.plan === 'enterprise') return seg;
  const limits = allowanceDuring(catalog, seg.plan, seg.cycle, Math.max(period.start, seg.effectiveAt), t);
  return limits ? { ...seg, limits } : seg;
}

/**
 * A catalog plan's allowance at `t` in a period (of that plan) that started at `from`: per pool, the
 * highest allowance of every catalog version in force at some instant of [from, t]. So a version
 * that raises an allowance applies at once to the running period, and one that cuts it applies from
 * the next period that starts after it (nobody loses credits mid-period; a plan that never resets,
 * free, keeps the highest it had). null when no version has the pair.
 */
export function allowanceDuring(catalog: Catalog, plan: Exclude<Plan, 'enterprise'>, cycle: Cycle, from: number, t: number): Limits | null {
  let out: Limits | null = null;
  const versions = catalog.versions;
  for (let i = 0; i < versions.length; i++) {
    // The first version is also the one in force before every version (catalogVersionAt).
    const start = i === 0 ? Number.NEGATIVE_INFINITY : effectiveFromMs(versions[i]);
    const end = i + 1 < versions.length ? effectiveFromMs(versions[i + 1]) : Number.POSITIVE_INFINITY;
    if (start > t || end <= from) continue;
    const l = versions[i].plans[plan]?.[cycle];
    if (!l) continue;
    out = out
      ? { ai_image_credits: Math.max(out.ai_image_credits, l.ai_image_credits), ai_video_credits: Math.max(out.ai_video_credits, l.ai_video_credits), batch_exports: Math.max(out.batch_exports, l.batch_exports) }
      : { ai_image_credits: l.ai_image_credits, ai_video_credits: l.ai_video_credits, batch_exports: l.batch_exports };
  }
  return out;
}

/**
 * Reset boundaries b with after < b <= until, in order: every start of a period inside a run
 * except the run's own start (a change that starts a new period is not a reset).
 */
export function resetBoundaries(timeline: Timeline, after: number, until: number, max = 10_000): number[] {
  const out: number[] = [];
  for (const run of runsOf(timeline)) {
    if (run.family === 'never') continue;
    if (run.end !== null && run.end <= after) continue;
    if (run.start > until) break;
    const family = run.family;
    let k = periodIndexOf(run.anchorAt, family, Math.max(run.start, after)) + 1;
    for (;;) {
      const b = periodStartAt(run.anchorAt, family, k++);
      if (b > until || (run.end !== null && b >= run.end) || out.length >= max) break;
      if (b > after && b > run.start) out.push(b);
    }
  }
  return out;
}

/** The first reset boundary strictly after `after`, or null when none will ever come. */
export function firstResetAfter(timeline: Timeline, after: number): number | null {
  for (const run of runsOf(timeline)) {
    if (run.family === 'never') continue;
    if (run.end !== null && run.end <= after) continue;
    const k = periodIndexOf(run.anchorAt, run.family, Math.max(run.start, after)) + 1;
    const b = periodStartAt(run.anchorAt, run.family, k);
    if (run.end === null || b < run.end) return b;
  }
  return null;
}

/** The earliest pending activation, or null. */
export function firstPendingActivation(timeline: Timeline): Segment | null {
  let first: Segment | null = null;
  for (const s of timeline) if (s.pendingSourceEventId !== undefined && (first === null || s.effectiveAt < first.effectiveAt)) first = s;
  return first;
}

/** The instant the scheduler must next look at a Space: its next reset or pending activation. */
export function nextWakeUp(timeline: Timeline, lastResetAt: number | null): number | null {
  const reset = firstResetAfter(timeline, lastResetAt ?? Number.NEGATIVE_INFINITY);
  const pending = firstPendingActivation(timeline);
  if (pending === null) return reset;
  return reset === null ? pending.effectiveAt : Math.min(reset, pending.effectiveAt);
}
