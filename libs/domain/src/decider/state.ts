/**
 * The Space's decision state and its fold (evolve): bounded by the corrections window.
 */
import { type Limits, type Pool } from '../catalog/catalog';
import type { MemberMove, PeriodMove, SpaceEvent } from '../events';
import type { OlderUse } from './commands';
import { type Period, iso, parseStoredInstant } from '../period';
import { type Segment, type Timeline, periodAt, withActivation, withSubscriptionChange } from '../timeline';
import { emptyLimits } from '../catalog/pricing';
import { recordedFingerprint } from './fingerprint';

// State
//
// The state a decision needs is bounded: usage can only be recorded inside the corrections window
// (`DecideContext.correctionWindowMs`, default 35 days before now), so only the uses that occurred
// inside the window are kept (for dedupe and for re-attribution when a late subscription change
// moves period boundaries). Older ones are compacted away (`compactSpace`): their totals stay in
// `periods` while a period can still change, and the store's deterministic event ids answer for
// their dedupe (`recordedIdsToLookUp`). Inside the window, at most a tail of the newest uses is
// kept (`trimUses`, USES_KEPT_MAX); the store answers for the others the same way, and a
// subscription change reads them back from the stream (`olderUsesWanted`). Memory per Space is a
// constant plus that bounded tail, whatever the length of the stream or the usage in the window.

export interface PeriodUsage {
  start: number;
  end: number | null;
  used: Limits;
  /** Generation and batch-export events recorded in the period. */
  usageEvents: number;
}

/** One recorded use inside the window, kept for dedupe and re-attribution. */
export interface UsageItem {
  /** The inbound eventId that recorded it. */
  id: string;
  at: number;
  pool: Pool;
  amount: number;
  /** Fingerprint of the recorded payload (`recordedFingerprint`): a resend with another one is a conflict. */
  fp: number;
  /**
   * The stream revision of the event that recorded it (0 on a use restored from a snapshot written
   * before revisions were kept: a read of the uses dropped from the tail then starts at the stream's start).
   */
  rev: number;
  /**
   * The member and feature it counted under in the usage breakdown (`memberMoves`). Absent on a
   * use restored from a snapshot written before members were kept.
   */
  userId?: string;
  feature?: string;
}

/** The feature a batch export counts under in the usage breakdown (batch exports have no AI feature). */
export const BATCH_EXPORT_FEATURE = 'batch_export';

/**
 * Equal member and feature texts share one string: each event parsed from the store brings its own
 * copies, and a use kept in the window would hold them (about 60 bytes per use; features are few,
 * a Space's members repeat). Bounded: cleared when full, which only costs sharing.
 */
const TEXTS_KEPT = 16_384;
const texts = new Map<string, string>();
export function sharedText(text: string): string {
  const kept = texts.get(text);
  if (kept !== undefined) return kept;
  if (texts.size >= TEXTS_KEPT) texts.clear();
  texts.set(text, text);
  return text;
}

export interface SpaceState {
  spaceId: string;
  /** Number of events folded: the stream's revision + 1. */
  version: number;
  timeline: Segment[];
  /**
   * Uses by inbound eventId, in stream order: every use whose occurredAt is at or after
   * max(`horizon`, `keptFrom`), and maybe some older ones recorded since the tail was last trimmed.
   */
  recent: Map<string, UsageItem>;
  /**
   * The tail of uses kept: uses that occurred before this instant (and after `horizon`) may have
   * been dropped from `recent` to bound it (`trimUses`); the store answers for them (dedupe by
   * `recordedIdsToLookUp`, a subscription change's moves by `olderUsesWanted`). -Infinity: none dropped.
   */
  keptFrom: number;
  /**
   * For the uses dropped from `recent` (by the UTC day of their occurredAt, as whole days since the
   * epoch), the lowest stream revision that recorded one: where a read of them starts. Days before
   * the horizon's are dropped by compaction, so at most the window's days.
   */
  droppedRevs: Map<number, number>;
  /** Inbound eventIds of subscription changes, with their payload fingerprints (one per change: bounded by the changes, not the usage). */
  subscriptionIds: Map<string, number>;
  /**
   * Usage by period start (epoch ms). Each use counts in the period that contained its occurredAt
   * when it was recorded; a later subscription change moves uses inside the window and records the
   * move (`SubscriptionChangedData.moves`). Periods that ended before `horizon` are dropped by
   * compaction (nothing can change them any more).
   */
  periods: Map<number, PeriodUsage>;
  /** Thresholds that fired and are not re-armed: `${periodStart}|${pool}|${threshold}`. */
  fired: Set<string>;
  /** The latest reset boundary recorded (epoch ms), or null. */
  lastResetAt: number | null;
  /** Uses that occurred before this instant were compacted away (-Infinity: nothing compacted). */
  horizon: number;
}


export function initialSpaceState(spaceId: string): SpaceState {
  return {
    spaceId,
    version: 0,
    timeline: [],
    recent: new Map(),
    keptFrom: Number.NEGATIVE_INFINITY,
    droppedRevs: new Map(),
    subscriptionIds: new Map(),
    periods: new Map(),
    fired: new Set(),
    lastResetAt: null,
    horizon: Number.NEGATIVE_INFINITY,
  };
}

/** A deep copy (tests and tools; the decision path never copies the state). */
export function cloneSpaceState(s: SpaceState): SpaceState {
  const periods = new Map<number, PeriodUsage>();
  for (const [k, p] of s.periods) periods.set(k, { ...p, used: { ...p.used } });
  return {
    spaceId: s.spaceId,
    version: s.version,
    timeline: s.timeline.map((seg) => ({ ...seg, limits: { ...seg.limits } })),
    recent: new Map(s.recent),
    keptFrom: s.keptFrom,
    droppedRevs: new Map(s.droppedRevs),
    subscriptionIds: new Map(s.subscriptionIds),
    periods,
    fired: new Set(s.fired),
    lastResetAt: s.lastResetAt,
    horizon: s.horizon,
  };
}

export const firedKey = (periodStart: number, pool: Pool, threshold: number): string => `${periodStart}|${pool}|${threshold}`;

/** The use a usage event records: credits of its pool, or exported images. */
export function usageItemOf(
  event: Extract<SpaceEvent, { type: 'GenerationRecorded' | 'BatchExportRecorded' }>,
): Omit<UsageItem, 'fp' | 'rev'> {
  const d = event.data;
  const at = parseStoredInstant(d.occurredAt);
  const userId = sharedText(d.userId);
  return event.type === 'GenerationRecorded'
    ? { id: d.sourceEventId, at, pool: event.data.pool, amount: event.data.credits, userId, feature: sharedText(event.data.feature) }
    : { id: d.sourceEventId, at, pool: 'batch_exports', amount: event.data.images, userId, feature: BATCH_EXPORT_FEATURE };
}

/**
 * Adds one use to the usage of its period (`row` null: the period had none). The one rule for
 * counting a use: the decider and every read model call it.
 */
export function addUse(row: PeriodUsage | null, period: Period, pool: Pool, amount: number): PeriodUsage {
  const p = row ?? { start: period.start, end: period.end, used: emptyLimits(), usageEvents: 0 };
  p.end = period.end;
  const used = { ...p.used };
  used[pool] += amount;
  p.used = used;
  p.usageEvents += 1;
  return p;
}

/**
 * The usage of a period after one recorded move (`row` null: the period had none); `row` is left
 * as it was. Returns null when the period is left with no usage event (the row goes away).
 */
export function applyPeriodMove(row: PeriodUsage | null, move: PeriodMove): PeriodUsage | null {
  const used = row?.used ?? emptyLimits();
  const usageEvents = (row?.usageEvents ?? 0) + move.usageEvents;
  if (usageEvents <= 0) return null;
  return {
    start: Date.parse(move.periodStart),
    end: move.periodEnd !== undefined ? parseEnd(move.periodEnd) : (row?.end ?? null),
    used: {
      ai_image_credits: used.ai_image_credits + move.used.ai_image_credits,
      ai_video_credits: used.ai_video_credits + move.used.ai_video_credits,
      batch_exports: used.batch_exports + move.used.batch_exports,
    },
    usageEvents,
  };
}

const parseEnd = (end: string | null): number | null => (end === null ? null : Date.parse(end));

/** A use whose period a timeline change moved: the period containing it before and after. */
interface MovedUse<U> {
  use: U;
  from: Period;
  to: Period;
}

/**
 * The uses whose period changes (start or end) when the timeline changes from `before` to
 * `after`, with the period containing each under both. The one attribution rule: the period moves
 * and the member moves are both built from it.
 */
function* movedUses<U extends { at: number }>(before: Timeline, after: Timeline, uses: Iterable<U>): Generator<MovedUse<U>> {
  for (const use of uses) {
    const from = periodAt(before, use.at);
    const to = periodAt(after, use.at);
    if (from.start !== to.start || from.end !== to.end) yield { use, from, to };
  }
}

/**
 * How usage moves between periods when the timeline changes from `before` to `after`: for each
 * use, the period containing it under each timeline; a use whose period changed (start or end)
 * leaves the old one and joins the new one. The one attribution rule: the decider records its
 * result in the SubscriptionChanged event and every read model applies it.
 */
export function attributionMoves(before: Timeline, after: Timeline, uses: Iterable<{ at: number; pool: Pool; amount: number }>): PeriodMove[] {
  const periods = new PeriodMoves();
  for (const m of movedUses(before, after, uses)) periods.add(m);
  return periods.result();
}

/**
 * A subscription change's moves, per period (`attributionMoves`) and per member and feature (for
 * the usage breakdown: what each (period left, period joined, userId, feature) moved, over the uses
 * whose period start changed and whose member is known; a use restored from an older snapshot has
 * none and is left out), from one pass over the uses: nothing is kept per use (a change back-dated
 * over a heavy Space's window may move a million of them).
 */
export function changeMoves(
  before: Timeline,
  after: Timeline,
  uses: Iterable<{ at: number; pool: Pool; amount: number; userId?: string; feature?: string }>,
): { moves: PeriodMove[]; memberMoves: MemberMove[] } {
  const periods = new PeriodMoves();
  const members = new MemberMoves();
  for (const m of movedUses(before, after, uses)) {
    periods.add(m);
    members.add(m);
  }
  return { moves: periods.result(), memberMoves: members.result() };
}

/** Period moves summed per period start. */
class PeriodMoves {
  private readonly moves = new Map<number, { start: number; end?: number | null; used: Limits; usageEvents: number }>();

  add({ use: u, from, to }: MovedUse<{ pool: Pool; amount: number }>): void {
    const out = this.entry(from.start);
    out.used[u.pool] -= u.amount;
    out.usageEvents -= 1;
    const into = this.entry(to.start);
    into.used[u.pool] += u.amount;
    into.usageEvents += 1;
    into.end = to.end;
  }

  result(): PeriodMove[] {
    return [...this.moves.values()]
      .sort((a, b) => a.start - b.start)
      .map((m) => ({
        periodStart: iso(m.start),
        ...(m.end !== undefined ? { periodEnd: m.end === null ? null : iso(m.end) } : {}),
        used: m.used,
        usageEvents: m.usageEvents,
      }));
  }

  private entry(start: number) {
    let m = this.moves.get(start);
    if (!m) this.moves.set(start, (m = { start, used: emptyLimits(), usageEvents: 0 }));
    return m;
  }
}

/** Member moves summed per (period left, period joined, userId, feature), sorted by those. */
class MemberMoves {
  private readonly moves = new Map<string, { from: number; to: number; userId: string; feature: string; used: Limits; usageEvents: number }>();

  add({ use: u, from, to }: MovedUse<{ pool: Pool; amount: number; userId?: string; feature?: string }>): void {
    // Rows are kept by period start: a use whose period only changed its end stays in its row.
    if (from.start === to.start || u.userId === undefined || u.feature === undefined) return;
    const key = JSON.stringify([from.start, to.start, u.userId, u.feature]);
    let m = this.moves.get(key);
    if (!m) this.moves.set(key, (m = { from: from.start, to: to.start, userId: u.userId, feature: u.feature, used: emptyLimits(), usageEvents: 0 }));
    m.used[u.pool] += u.amount;
    m.usageEvents += 1;
  }

  result(): MemberMove[] {
    const text = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    return [...this.moves.values()]
      .sort((a, b) => a.from - b.from || a.to - b.to || text(a.userId, b.userId) || text(a.feature, b.feature))
      .map((m) => ({ from: iso(m.from), to: iso(m.to), userId: m.userId, feature: m.feature, used: m.used, usageEvents: m.usageEvents }));
  }
}

/**
 * The uses that occurred at or after `cutoff`: those kept, then `older` (uses dropped from the tail,
 * read back from the stream: `olderUsesWanted`, `olderUseOf`).
 */
export function* usesSince(state: SpaceState, cutoff: number, older: Iterable<OlderUse> = []): Iterable<OlderUse> {
  for (const u of state.recent.values()) if (u.at >= cutoff) yield u;
  // `olderUseOf` left out those the state holds; the state gains only new uses since.
  for (const u of older) if (u.at >= cutoff) yield u;
}

function countItem(state: SpaceState, item: Omit<UsageItem, 'fp' | 'rev'>): void {
  const period = periodAt(state.timeline, item.at);
  state.periods.set(period.start, addUse(state.periods.get(period.start) ?? null, period, item.pool, item.amount));
}

export function applyMoves(periods: Map<number, PeriodUsage>, moves: readonly PeriodMove[]): void {
  for (const m of moves) {
    const start = Date.parse(m.periodStart);
    const next = applyPeriodMove(periods.get(start) ?? null, m);
    if (next) periods.set(start, next);
    else periods.delete(start);
  }
}

/**
 * What a subscription change does to the periods' usage and the thresholds fired, in place: the
 * record under its `clearsPeriod` cleared (usage and thresholds), then its `moves` applied. The one
 * place both the fold (`evolve`) and the decision's look at the state after the change apply it.
 */
export function applyChangeToPeriods(periods: Map<number, PeriodUsage>, fired: Set<string>, clearsPeriod: string | undefined, moves: readonly PeriodMove[]): void {
  if (clearsPeriod !== undefined) {
    const start = Date.parse(clearsPeriod);
    periods.delete(start);
    const prefix = `${start}|`;
    for (const key of fired) if (key.startsWith(prefix)) fired.delete(key);
  }
  applyMoves(periods, moves);
}

/**
 * Folds one event into the state. For speed it updates `state` in place and returns it: clone
 * first (cloneSpaceState) when the previous state must survive.
 */
export function evolve(state: SpaceState, event: SpaceEvent): SpaceState {
  state.version += 1;
  switch (event.type) {
    case 'SubscriptionChanged': {
      const d = event.data;
      state.subscriptionIds.set(d.sourceEventId, recordedFingerprint(event));
      const before = state.timeline;
      state.timeline = withSubscriptionChange(state.timeline, d);
      // Written before moves were recorded (schema 1): attribute the uses this state still has.
      applyChangeToPeriods(state.periods, state.fired, d.clearsPeriod, d.moves ?? attributionMoves(before, state.timeline, state.recent.values()));
      return state;
    }
    case 'SubscriptionActivated': {
      state.timeline = withActivation(state.timeline, event.data.sourceEventId);
      return state;
    }
    case 'GenerationRecorded':
    case 'BatchExportRecorded': {
      const item = usageItemOf(event);
      // One literal with every field (a spread then `fp` would put `fp` in a separate property array).
      if (item.at >= state.horizon)
        state.recent.set(item.id, {
          id: item.id,
          at: item.at,
          pool: item.pool,
          amount: item.amount,
          userId: item.userId,
          feature: item.feature,
          fp: recordedFingerprint(event),
          rev: state.version - 1,
        });
      countItem(state, item);
      return state;
    }
    case 'PeriodReset': {
      const start = Date.parse(event.data.periodStart);
      state.lastResetAt = state.lastResetAt === null ? start : Math.max(state.lastResetAt, start);
      return state;
    }
    case 'ThresholdCrossed': {
      const d = event.data;
      state.fired.add(firedKey(Date.parse(d.periodStart), d.pool, d.threshold));
      return state;
    }
    case 'ThresholdRearmed': {
      const d = event.data;
      state.fired.delete(firedKey(Date.parse(d.periodStart), d.pool, d.threshold));
      return state;
    }
  }
}

/** The whole stream folded with nothing compacted (audits and tests: every period is kept). */
export function foldSpace(spaceId: string, events: Iterable<SpaceEvent>): SpaceState {
  let s = initialSpaceState(spaceId);
  for (const e of events) s = evolve(s, e);
  return s;
}
