/**
 * The Space decider: decide(command, state, context) -> events; evolve(state, event) -> state.
 * Pure: the clock (`now`), the catalog and the id generator come in through the context.
 */
import {
  type Catalog,
  type Cycle,
  CYCLES,
  type Limits,
  type Plan,
  PLANS,
  type Pool,
  POOLS,
  catalogVersionAt,
  resetFamilyOf,
} from './catalog/catalog';
import type { BatchExportedV1, GenerationPerformedV1, Rejection, SubscriptionChangedV1 } from './contracts';
import type { IdentifiedSpaceEvent, PeriodMove, SpaceEvent, SubscriptionChangedData } from './events';
import { DAY_MS, type Period, iso, parseInstant } from './period';
import {
  type Segment,
  type Timeline,
  limitsFor,
  periodAt,
  resetBoundaries,
  segmentAt,
  segmentIndexAt,
  withActivation,
  withSubscriptionChange,
} from './timeline';

// ---------------------------------------------------------------------------------------------
// State
//
// The state a decision needs is bounded: usage can only be recorded inside the corrections window
// (`DecideContext.correctionWindowMs`, default 35 days before now), so only the uses that occurred
// inside the window are kept (for dedupe and for re-attribution when a late subscription change
// moves period boundaries). Older ones are compacted away (`compactSpace`): their totals stay in
// `periods` while a period can still change, and the store's deterministic event ids answer for
// their dedupe (`recordedIdsToLookUp`). Memory per Space is a constant plus what falls inside the
// window, whatever the length of the stream.

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
}

export interface SpaceState {
  spaceId: string;
  /** Number of events folded: the stream's revision + 1. */
  version: number;
  timeline: Segment[];
  /** Uses whose occurredAt is at or after `horizon`, by inbound eventId, in stream order. */
  recent: Map<string, UsageItem>;
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

export const emptyLimits = (): Limits => ({ ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 });

export function initialSpaceState(spaceId: string): SpaceState {
  return {
    spaceId,
    version: 0,
    timeline: [],
    recent: new Map(),
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
): Omit<UsageItem, 'fp'> {
  return event.type === 'GenerationRecorded'
    ? { id: event.data.sourceEventId, at: Date.parse(event.data.occurredAt), pool: event.data.pool, amount: event.data.credits }
    : { id: event.data.sourceEventId, at: Date.parse(event.data.occurredAt), pool: 'batch_exports', amount: event.data.images };
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

/**
 * How usage moves between periods when the timeline changes from `before` to `after`: for each
 * use, the period containing it under each timeline; a use whose period changed (start or end)
 * leaves the old one and joins the new one. The one attribution rule: the decider records its
 * result in the SubscriptionChanged event and every read model applies it.
 */
export function attributionMoves(before: Timeline, after: Timeline, uses: Iterable<{ at: number; pool: Pool; amount: number }>): PeriodMove[] {
  const moves = new Map<number, { start: number; end?: number | null; used: Limits; usageEvents: number }>();
  const entry = (start: number) => {
    let m = moves.get(start);
    if (!m) moves.set(start, (m = { start, used: emptyLimits(), usageEvents: 0 }));
    return m;
  };
  for (const u of uses) {
    const from = periodAt(before, u.at);
    const to = periodAt(after, u.at);
    if (from.start === to.start && from.end === to.end) continue;
    const out = entry(from.start);
    out.used[u.pool] -= u.amount;
    out.usageEvents -= 1;
    const into = entry(to.start);
    into.used[u.pool] += u.amount;
    into.usageEvents += 1;
    into.end = to.end;
  }
  return [...moves.values()]
    .sort((a, b) => a.start - b.start)
    .map((m) => ({
      periodStart: iso(m.start),
      ...(m.end !== undefined ? { periodEnd: m.end === null ? null : iso(m.end) } : {}),
      used: m.used,
      usageEvents: m.usageEvents,
    }));
}

/** The uses kept that occurred at or after `cutoff`. */
function* usesSince(state: SpaceState, cutoff: number): Iterable<UsageItem> {
  for (const u of state.recent.values()) if (u.at >= cutoff) yield u;
}

function countItem(state: SpaceState, item: Omit<UsageItem, 'fp'>): void {
  const period = periodAt(state.timeline, item.at);
  state.periods.set(period.start, addUse(state.periods.get(period.start) ?? null, period, item.pool, item.amount));
}

function applyMoves(periods: Map<number, PeriodUsage>, moves: readonly PeriodMove[]): void {
  for (const m of moves) {
    const start = Date.parse(m.periodStart);
    const next = applyPeriodMove(periods.get(start) ?? null, m);
    if (next) periods.set(start, next);
    else periods.delete(start);
  }
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
      applyMoves(state.periods, d.moves ?? attributionMoves(before, state.timeline, state.recent.values()));
      return state;
    }
    case 'SubscriptionActivated': {
      state.timeline = withActivation(state.timeline, event.data.sourceEventId);
      return state;
    }
    case 'GenerationRecorded':
    case 'BatchExportRecorded': {
      const item = usageItemOf(event);
      if (item.at >= state.horizon) state.recent.set(item.id, { ...item, fp: recordedFingerprint(event) });
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

// ---------------------------------------------------------------------------------------------
// The corrections window and compaction

/** Default corrections window: usage may arrive up to 35 days after it occurred. */
export const DEFAULT_CORRECTION_WINDOW_MS = 35 * DAY_MS;
/** Compaction runs when the horizon would move by at least this much (keeps it off the per-event path). */
export const COMPACTION_STEP_MS = 3_600_000;

/** The earliest occurredAt usage may have at `now`: the later of the window's start and the compacted horizon. */
export function usageCutoff(state: SpaceState, now: number, windowMs = DEFAULT_CORRECTION_WINDOW_MS): number {
  return Math.max(state.horizon, now - windowMs);
}

/**
 * Moves the horizon to `now - windowMs` and drops what nothing can change any more: uses that
 * occurred before it, periods that ended before it and their thresholds. In place; a no-op unless
 * the horizon would move by COMPACTION_STEP_MS (or `force`). Deciding any event that the window
 * accepts gives the same answer before and after.
 */
export function compactSpace(state: SpaceState, now: number, windowMs = DEFAULT_CORRECTION_WINDOW_MS, force = false): SpaceState {
  const horizon = now - windowMs;
  if (!(horizon > state.horizon) || (!force && horizon - state.horizon < COMPACTION_STEP_MS)) return state;
  state.horizon = horizon;
  for (const [id, item] of state.recent) if (item.at < horizon) state.recent.delete(id);
  for (const [start, p] of state.periods) if (p.end !== null && p.end <= horizon) state.periods.delete(start);
  const keepFrom = periodAt(state.timeline, horizon).start;
  for (const key of state.fired) {
    const start = Number(key.slice(0, key.indexOf('|')));
    if (start < keepFrom && !state.periods.has(start)) state.fired.delete(key);
  }
  return state;
}

/** Bumped whenever the snapshot layout or the meaning of the state changes: older snapshots are ignored. */
export const SPACE_SNAPSHOT_SCHEMA = 2;

interface SnapshotBody {
  spaceId: string;
  version: number;
  horizon: number | null;
  windowMs: number;
  timeline: Segment[];
  /** [eventId, at, pool index, amount, fingerprint] */
  recent: [string, number, number, number, number][];
  /** [eventId, fingerprint] */
  subscriptionIds: [string, number][];
  periods: [number, number | null, number, number, number, number][];
  fired: string[];
  lastResetAt: number | null;
}

/** The state as a snapshot body (JSON), for a state compacted with `windowMs`. */
export function snapshotOfSpace(state: SpaceState, windowMs: number): string {
  const body: SnapshotBody = {
    spaceId: state.spaceId,
    version: state.version,
    horizon: Number.isFinite(state.horizon) ? state.horizon : null,
    windowMs,
    timeline: state.timeline,
    recent: [...state.recent.values()].map((u) => [u.id, u.at, POOLS.indexOf(u.pool), u.amount, u.fp]),
    subscriptionIds: [...state.subscriptionIds],
    periods: [...state.periods.values()].map((p) => [p.start, p.end, p.used.ai_image_credits, p.used.ai_video_credits, p.used.batch_exports, p.usageEvents]),
    fired: [...state.fired],
    lastResetAt: state.lastResetAt,
  };
  return JSON.stringify(body);
}

/**
 * A state from a snapshot body, or null when the snapshot cannot be trusted: another schema,
 * another Space, or a window narrower than `windowMs` (it lacks uses the wider window keeps).
 */
export function spaceFromSnapshot(spaceId: string, schema: number, json: string, windowMs: number): SpaceState | null {
  if (schema !== SPACE_SNAPSHOT_SCHEMA) return null;
  let b: SnapshotBody;
  try {
    b = JSON.parse(json) as SnapshotBody;
  } catch {
    return null;
  }
  if (!b || b.spaceId !== spaceId || !Number.isInteger(b.version) || b.version < 0 || !(b.windowMs >= windowMs)) return null;
  const s = initialSpaceState(spaceId);
  s.version = b.version;
  s.horizon = b.horizon === null ? Number.NEGATIVE_INFINITY : b.horizon;
  s.timeline = b.timeline;
  for (const [id, at, pool, amount, fp] of b.recent) s.recent.set(id, { id, at, pool: POOLS[pool], amount, fp });
  for (const [id, fp] of b.subscriptionIds) s.subscriptionIds.set(id, fp);
  for (const [start, end, img, vid, exp, n] of b.periods)
    s.periods.set(start, { start, end, used: { ai_image_credits: img, ai_video_credits: vid, batch_exports: exp }, usageEvents: n });
  for (const k of b.fired) s.fired.add(k);
  s.lastResetAt = b.lastResetAt;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Commands and decisions

export type SpaceCommand =
  | { type: 'RecordGeneration'; input: GenerationPerformedV1 }
  | { type: 'RecordBatchExport'; input: BatchExportedV1 }
  | { type: 'ChangeSubscription'; input: SubscriptionChangedV1 }
  | { type: 'ResetDuePeriods'; spaceId: string }
  /** A catalog version took effect: thresholds are re-evaluated under the allowances it brings (once per version). */
  | { type: 'ReevaluateAllowances'; spaceId: string; catalogVersion: number };

/** The inbound eventId of a command (none for the scheduler's own commands). */
export const inboundEventIdOf = (command: SpaceCommand): string | undefined =>
  command.type === 'ResetDuePeriods' || command.type === 'ReevaluateAllowances' ? undefined : command.input.eventId;

export interface DecideContext {
  /** The decision instant, epoch ms (from the injected clock). */
  now: number;
  catalog: Catalog;
  /** Deterministic id for a name: the same name always yields the same id (e.g. UUID v5). */
  eventId: (name: string) => string;
  /** How far in the future usage may be dated (default one hour). */
  maxClockSkewMs?: number;
  /** How late usage may arrive (default DEFAULT_CORRECTION_WINDOW_MS). */
  correctionWindowMs?: number;
  /**
   * Inbound eventIds the store already holds a recorded event for, with that event's payload
   * fingerprint (`recordedFingerprint`), among those asked for by `recordedIdsToLookUp` (uses older
   * than the window, whose ids the state no longer keeps).
   */
  alreadyRecorded?: ReadonlyMap<string, number>;
}

export type Decision =
  | { outcome: 'accepted'; events: IdentifiedSpaceEvent[] }
  | { outcome: 'duplicate'; events: [] }
  /** The eventId was recorded with another payload: refused, nothing recorded (rule event_id_conflict). */
  | { outcome: 'conflict'; events: []; rejection: Rejection }
  | { outcome: 'rejected'; events: []; rejection: Rejection };

const reject = (field: string, rule: string, message: string): Decision => ({
  outcome: 'rejected',
  events: [],
  rejection: { field, rule, message },
});

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** Usage from further in the future than this is refused: a producer's clock is wrong. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 3_600_000;

function checkSkew(field: string, at: number, ctx: DecideContext): Decision | null {
  const max = ctx.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (at > ctx.now + max)
    return reject(field, 'not_in_future', `${field} is ${Math.round((at - ctx.now) / 60_000)} min in the future (at most ${Math.round(max / 60_000)} min of clock skew is accepted)`);
  return null;
}

const isPositiveInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1;

/** True once `used` reaches `threshold` percent of `limit` (any use of a zero limit reaches every threshold). */
export function reaches(used: number, limit: number, threshold: number): boolean {
  return used > 0 && used * 100 >= threshold * limit;
}

function isOpen(period: Period, now: number): boolean {
  return period.end === null || period.end > now;
}

/**
 * Thresholds newly reached by a pool's usage in an open period: at most once per
 * (period, pool, threshold) until re-armed.
 */
function crossedThresholds(
  state: SpaceState,
  period: Period,
  pool: Pool,
  used: number,
  limit: number,
  thresholds: number[],
  causationId: string,
  occurredAt: string,
  ctx: DecideContext,
): IdentifiedSpaceEvent[] {
  const out: IdentifiedSpaceEvent[] = [];
  for (const threshold of thresholds) {
    if (!reaches(used, limit, threshold) || state.fired.has(firedKey(period.start, pool, threshold))) continue;
    out.push({
      id: ctx.eventId(`${state.spaceId}/threshold/${iso(period.start)}/${pool}/${threshold}/${causationId}`),
      type: 'ThresholdCrossed',
      data: {
        spaceId: state.spaceId,
        pool,
        threshold,
        periodStart: iso(period.start),
        periodEnd: period.end === null ? null : iso(period.end),
        used,
        limit,
        causationId,
        occurredAt,
      },
    });
  }
  return out;
}

function decideUsage(
  state: SpaceState,
  sourceEventId: string,
  pool: Pool,
  amount: number,
  occurredAtMs: number,
  build: (period: Period) => IdentifiedSpaceEvent,
  ctx: DecideContext,
): Decision {
  const period = periodAt(state.timeline, occurredAtMs);
  const recorded = build(period);
  const events: IdentifiedSpaceEvent[] = [recorded];
  // A late event for a closed period counts there and does not notify about a period that is over.
  if (amount > 0 && isOpen(period, ctx.now)) {
    const used = (state.periods.get(period.start)?.used[pool] ?? 0) + amount;
    const seg = limitsFor(state.timeline, period, ctx.now, ctx.catalog);
    const thresholds = catalogVersionAt(ctx.catalog, ctx.now).thresholds;
    events.push(...crossedThresholds(state, period, pool, used, seg.limits[pool], thresholds, sourceEventId, iso(occurredAtMs), ctx));
  }
  return { outcome: 'accepted', events };
}

function decideGeneration(state: SpaceState, input: GenerationPerformedV1, ctx: DecideContext): Decision {
  const occurredAt = parseInstant(input.occurredAt);
  if (Number.isNaN(occurredAt)) return reject('occurredAt', 'iso_instant', 'occurredAt must be an ISO-8601 instant with a zone');
  if (!isPositiveInt(input.generations)) return reject('generations', 'positive_integer', 'generations must be an integer >= 1');
  const skew = checkSkew('occurredAt', occurredAt, ctx) ?? checkTooLate(state, occurredAt, ctx);
  if (skew) return skew;
  // Priced with the version in force when it occurred; a feature that version does not know is
  // priced with the version in force now (so a dead letter re-driven after a catalog update passes).
  let cv = catalogVersionAt(ctx.catalog, occurredAt);
  if (!hasOwn(cv.features, input.feature)) cv = catalogVersionAt(ctx.catalog, ctx.now);
  const price = hasOwn(cv.features, input.feature) ? cv.features[input.feature] : undefined;
  if (!price)
    return reject('feature', 'known_feature', `unknown feature "${input.feature}" (catalog version ${cv.version} lists: ${Object.keys(cv.features).join(', ')})`);
  if (input.medium !== price.medium)
    return reject('medium', 'matches_feature', `feature ${input.feature} produces ${price.medium}, not ${String(input.medium)}`);
  const pool: Pool = price.medium === 'image' ? 'ai_image_credits' : 'ai_video_credits';
  const credits = price.credits * input.generations;
  return decideUsage(
    state,
    input.eventId,
    pool,
    credits,
    occurredAt,
    (period) => ({
      id: generationRecordedId(state.spaceId, input.eventId, ctx.eventId),
      type: 'GenerationRecorded',
      data: {
        spaceId: state.spaceId,
        sourceEventId: input.eventId,
        userId: input.userId,
        feature: input.feature,
        medium: price.medium,
        generations: input.generations,
        occurredAt: iso(occurredAt),
        batchId: input.batchId ?? null,
        platform: input.platform ?? null,
        pool,
        unitCost: price.credits,
        credits,
        catalogVersion: cv.version,
        periodStart: iso(period.start),
        periodEnd: period.end === null ? null : iso(period.end),
      },
    }),
    ctx,
  );
}

function decideBatchExport(state: SpaceState, input: BatchExportedV1, ctx: DecideContext): Decision {
  const occurredAt = parseInstant(input.occurredAt);
  if (Number.isNaN(occurredAt)) return reject('occurredAt', 'iso_instant', 'occurredAt must be an ISO-8601 instant with a zone');
  const skew = checkSkew('occurredAt', occurredAt, ctx) ?? checkTooLate(state, occurredAt, ctx);
  if (skew) return skew;
  // The version in force when it occurred; if that one refuses the batch, the version in force now
  // (so a dead letter re-driven after a catalog update passes).
  let cv = catalogVersionAt(ctx.catalog, occurredAt);
  const fits = (v: typeof cv) => hasOwn(v.perBatchCap, input.platform) && input.images <= v.perBatchCap[input.platform];
  if (!fits(cv) && fits(catalogVersionAt(ctx.catalog, ctx.now))) cv = catalogVersionAt(ctx.catalog, ctx.now);
  const cap = hasOwn(cv.perBatchCap, input.platform) ? cv.perBatchCap[input.platform] : undefined;
  if (cap === undefined)
    return reject('platform', 'known_platform', `unknown platform "${input.platform}" (known: ${Object.keys(cv.perBatchCap).join(', ')})`);
  if (!isPositiveInt(input.images)) return reject('images', 'positive_integer', 'images must be an integer >= 1');
  if (input.images > cap) return reject('images', 'per_batch_cap', `a batch holds at most ${cap} images on ${input.platform}; got ${input.images}`);
  return decideUsage(
    state,
    input.eventId,
    'batch_exports',
    input.images,
    occurredAt,
    (period) => ({
      id: batchRecordedId(state.spaceId, input.eventId, ctx.eventId),
      type: 'BatchExportRecorded',
      data: {
        spaceId: state.spaceId,
        sourceEventId: input.eventId,
        userId: input.userId,
        batchId: input.batchId,
        images: input.images,
        platform: input.platform,
        occurredAt: iso(occurredAt),
        catalogVersion: cv.version,
        periodStart: iso(period.start),
        periodEnd: period.end === null ? null : iso(period.end),
      },
    }),
    ctx,
  );
}

const isLimits = (v: unknown): v is Limits =>
  typeof v === 'object' &&
  v !== null &&
  POOLS.every((p) => Number.isInteger((v as Record<string, unknown>)[p]) && ((v as Record<string, number>)[p] ?? -1) >= 0);

function decideSubscription(state: SpaceState, input: SubscriptionChangedV1, ctx: DecideContext): Decision {
  const effectiveAt = parseInstant(input.effectiveAt);
  if (Number.isNaN(effectiveAt)) return reject('effectiveAt', 'iso_instant', 'effectiveAt must be an ISO-8601 instant with a zone');
  if (!(PLANS as readonly string[]).includes(input.plan)) return reject('plan', 'known_plan', `plan must be one of ${PLANS.join(', ')}`);
  if (!(CYCLES as readonly string[]).includes(input.cycle)) return reject('cycle', 'known_cycle', `cycle must be one of ${CYCLES.join(', ')}`);
  const cv = catalogVersionAt(ctx.catalog, effectiveAt);
  let limits: Limits;
  if (input.plan === 'enterprise') {
    if (!cv.enterpriseCycles.includes(input.cycle))
      return reject('cycle', 'plan_cycle_exists', `plan enterprise has no ${input.cycle} cycle`);
    if (!isLimits(input.customLimits))
      return reject('customLimits', 'required_for_enterprise', `enterprise needs customLimits with integers >= 0 for ${POOLS.join(', ')}`);
    limits = { ai_image_credits: input.customLimits.ai_image_credits, ai_video_credits: input.customLimits.ai_video_credits, batch_exports: input.customLimits.batch_exports };
  } else {
    if (input.customLimits !== undefined && input.customLimits !== null)
      return reject('customLimits', 'enterprise_only', 'customLimits are only for the enterprise plan');
    const fromCatalog = cv.plans[input.plan as Exclude<Plan, 'enterprise'>]?.[input.cycle as Cycle];
    if (!fromCatalog)
      return reject('cycle', 'plan_cycle_exists', `plan ${input.plan} has no ${input.cycle} cycle (catalog version ${cv.version})`);
    limits = { ...fromCatalog };
  }
  const family = resetFamilyOf(input.plan, input.cycle);
  const previousIdx = segmentIndexAt(state.timeline, effectiveAt);
  const previous = segmentAt(state.timeline, effectiveAt, ctx.catalog);
  const reanchored = previous.family !== family;
  const anchorAt = reanchored ? effectiveAt : previous.anchorAt;
  const data: SubscriptionChangedData = {
    spaceId: state.spaceId,
    sourceEventId: input.eventId,
    plan: input.plan,
    cycle: input.cycle,
    effectiveAt: iso(effectiveAt),
    limits,
    customLimits: input.plan === 'enterprise' ? { ...limits } : null,
    catalogVersion: cv.version,
    anchorAt: iso(anchorAt),
    resetFamily: family,
    reanchored,
    previous: previousIdx < 0 ? null : { plan: previous.plan, cycle: previous.cycle },
    decidedAt: iso(ctx.now),
    moves: [],
  };
  // Uses inside the window whose period the change moves (usage older than the window stays in
  // the period it was recorded in): recorded, so read models apply them without keeping uses.
  const timeline = withSubscriptionChange(state.timeline, data);
  data.moves = attributionMoves(state.timeline, timeline, usesSince(state, cutoffFor(state, ctx)));
  const changed: IdentifiedSpaceEvent = { id: recordedIdOf(state.spaceId, { type: 'ChangeSubscription', input }, ctx.eventId)!, type: 'SubscriptionChanged', data };
  const events: IdentifiedSpaceEvent[] = [changed];
  // Limits changed for the running period: re-arm thresholds now under, fire thresholds now reached.
  // A change dated in the future is re-evaluated when the scheduler activates it.
  if (effectiveAt <= ctx.now) {
    // The state after the change, without touching `state`: moves replace period entries, never mutate them.
    const periods = new Map(state.periods);
    applyMoves(periods, data.moves);
    const after: SpaceState = { ...state, timeline, periods };
    const inForce = limitsFor(after.timeline, periodAt(after.timeline, ctx.now), ctx.now, ctx.catalog);
    if (inForce.effectiveAt === effectiveAt && inForce.plan === input.plan && inForce.cycle === input.cycle)
      events.push(...reevaluateThresholds(after, input.eventId, iso(effectiveAt), ctx));
  }
  return { outcome: 'accepted', events };
}

/**
 * After the limits in force changed: re-arms thresholds the running period's usage is now under,
 * and fires thresholds it now reaches (each at most once until re-armed).
 */
function reevaluateThresholds(state: SpaceState, causationId: string, occurredAt: string, ctx: DecideContext): IdentifiedSpaceEvent[] {
  const events: IdentifiedSpaceEvent[] = [];
  const period = periodAt(state.timeline, ctx.now);
  const limits = limitsFor(state.timeline, period, ctx.now, ctx.catalog).limits;
  const thresholds = catalogVersionAt(ctx.catalog, ctx.now).thresholds;
  const used = state.periods.get(period.start)?.used ?? emptyLimits();
  for (const pool of POOLS) {
    for (const threshold of thresholds) {
      if (state.fired.has(firedKey(period.start, pool, threshold)) && !reaches(used[pool], limits[pool], threshold)) {
        events.push({
          id: ctx.eventId(`${state.spaceId}/rearm/${iso(period.start)}/${pool}/${threshold}/${causationId}`),
          type: 'ThresholdRearmed',
          data: { spaceId: state.spaceId, pool, threshold, periodStart: iso(period.start), used: used[pool], limit: limits[pool], causationId },
        });
      }
    }
    events.push(...crossedThresholds(state, period, pool, used[pool], limits[pool], thresholds, causationId, occurredAt, ctx));
  }
  return events;
}

/**
 * Resets due at `now`: at most ONE PeriodReset per decision, for the latest boundary passed, with
 * the number of boundaries it covers (a catch-up after a back-dated subscription or a scheduler
 * outage is one notification, not one per missed period, and one stored event).
 */
function decideResets(state: SpaceState, ctx: DecideContext): Decision {
  const after = state.lastResetAt ?? Number.NEGATIVE_INFINITY;
  const events: IdentifiedSpaceEvent[] = [];
  const latest = lastResetBoundary(state.timeline, after, ctx.now);
  if (latest !== null) {
    const b = latest.boundary;
    const period = periodAt(state.timeline, b);
    const previous = periodAt(state.timeline, b - 1);
    const seg = segmentAt(state.timeline, b, ctx.catalog);
    events.push({
      id: ctx.eventId(`${state.spaceId}/reset/${iso(b)}`),
      type: 'PeriodReset',
      data: {
        spaceId: state.spaceId,
        periodStart: iso(b),
        periodEnd: period.end === null ? null : iso(period.end),
        previousPeriodStart: iso(previous.start),
        plan: seg.plan,
        cycle: seg.cycle,
        limits: { ...seg.limits },
        boundariesCovered: latest.count,
        firstBoundary: iso(latest.first),
      },
    });
  }
  // Subscription changes decided before they took effect: activate those now in force, and
  // re-evaluate the thresholds under the limits they brought.
  const due = state.timeline.filter((seg) => seg.pendingSourceEventId !== undefined && seg.effectiveAt <= ctx.now);
  if (due.length) {
    for (const seg of due)
      events.push({
        id: ctx.eventId(`${state.spaceId}/activation/${seg.pendingSourceEventId}`),
        type: 'SubscriptionActivated',
        data: { spaceId: state.spaceId, sourceEventId: seg.pendingSourceEventId!, effectiveAt: iso(seg.effectiveAt) },
      });
    // Resets and activations change only the timeline and lastResetAt: a shallow copy is enough.
    const after: SpaceState = { ...state };
    for (const e of events) evolve(after, e);
    const last = due[due.length - 1];
    events.push(...reevaluateThresholds(after, last.pendingSourceEventId!, iso(last.effectiveAt), ctx));
  }
  return { outcome: 'accepted', events };
}

/** The latest reset boundary in (after, until], the first one, and how many there are; null when none. */
export function lastResetBoundary(timeline: Timeline, after: number, until: number): { boundary: number; first: number; count: number } | null {
  let first: number | null = null;
  let last: number | null = null;
  let count = 0;
  let from = after;
  // resetBoundaries walks in order; pages keep memory bounded however far back `after` is.
  for (;;) {
    const page = resetBoundaries(timeline, from, until, 1000);
    if (page.length === 0) break;
    if (first === null) first = page[0];
    last = page[page.length - 1];
    count += page.length;
    from = last;
    if (page.length < 1000) break;
  }
  return last === null || first === null ? null : { boundary: last, first, count };
}

/**
 * A catalog version that changes allowances reaches every Space on the plans it changes (through
 * `limitsFor`: a raise at once, a cut from the next period). When it takes effect, the running
 * period's thresholds are re-evaluated exactly as for an upgrade: re-armed where usage is now under,
 * fired where it is now reached; once per version (the ids derive from it).
 */
function decideAllowances(state: SpaceState, catalogVersion: number, ctx: DecideContext): Decision {
  const v = ctx.catalog.versions.find((x) => x.version === catalogVersion);
  if (!v || Date.parse(v.effectiveFrom) > ctx.now) return { outcome: 'accepted', events: [] };
  return { outcome: 'accepted', events: reevaluateThresholds(state, `catalog-v${catalogVersion}`, iso(Math.max(Date.parse(v.effectiveFrom), 0)), ctx) };
}

const isKnown = (state: SpaceState, eventId: string): boolean => state.recent.has(eventId) || state.subscriptionIds.has(eventId);

/** The fingerprint recorded for an inbound eventId, if the state or the store lookup knows it. */
function knownFingerprint(state: SpaceState, eventId: string, ctx: DecideContext): number | undefined {
  return state.recent.get(eventId)?.fp ?? state.subscriptionIds.get(eventId) ?? ctx.alreadyRecorded?.get(eventId);
}

/** The earliest occurredAt usage may have for this decision (`usageCutoff` with the context's window). */
const cutoffFor = (state: SpaceState, ctx: DecideContext): number => usageCutoff(state, ctx.now, ctx.correctionWindowMs ?? DEFAULT_CORRECTION_WINDOW_MS);

/** Refuses usage older than the corrections window (a duplicate of it was answered before). */
function checkTooLate(state: SpaceState, at: number, ctx: DecideContext): Decision | null {
  const cutoff = cutoffFor(state, ctx);
  if (at >= cutoff) return null;
  const windowMs = ctx.correctionWindowMs ?? DEFAULT_CORRECTION_WINDOW_MS;
  return reject(
    'occurredAt',
    'too_late',
    `occurredAt ${iso(at)} is before the corrections window (usage is accepted up to ${Math.round(windowMs / DAY_MS)} days late, so from ${iso(cutoff)})`,
  );
}

const generationRecordedId = (spaceId: string, inbound: string, eventId: (name: string) => string) => eventId(`${spaceId}/generation/${inbound}`);
const batchRecordedId = (spaceId: string, inbound: string, eventId: (name: string) => string) => eventId(`${spaceId}/batch/${inbound}`);

/** The id of the event an inbound command records (deterministic: the store's dedupe key); null for resets. */
export function recordedIdOf(spaceId: string, command: SpaceCommand, eventId: (name: string) => string): string | null {
  switch (command.type) {
    case 'ChangeSubscription':
      return eventId(`${spaceId}/subscription/${command.input.eventId}`);
    case 'RecordGeneration':
      return generationRecordedId(spaceId, command.input.eventId, eventId);
    case 'RecordBatchExport':
      return batchRecordedId(spaceId, command.input.eventId, eventId);
    default:
      return null;
  }
}

/**
 * Usage commands the state cannot dedupe on its own: they occurred before the cutoff, so their
 * ids, if ever recorded, were compacted away. Returns stored-event id -> inbound eventId; the
 * caller looks the ids up in the store and passes the inbound ids found as `alreadyRecorded`.
 */
export function recordedIdsToLookUp(state: SpaceState, commands: readonly SpaceCommand[], ctx: DecideContext): Map<string, string> {
  const out = new Map<string, string>();
  const cutoff = cutoffFor(state, ctx);
  for (const c of commands) {
    if (c.type !== 'RecordGeneration' && c.type !== 'RecordBatchExport') continue;
    if (typeof c.input.eventId !== 'string' || isKnown(state, c.input.eventId)) continue;
    const at = parseInstant(c.input.occurredAt);
    if (Number.isNaN(at) || at >= cutoff) continue;
    const id = recordedIdOf(state.spaceId, c, ctx.eventId);
    if (id) out.set(id, c.input.eventId);
  }
  return out;
}

/** Decides what a command records. Never mutates `state`. */
export function decide(state: SpaceState, command: SpaceCommand, ctx: DecideContext): Decision {
  if (command.type === 'ResetDuePeriods') return decideResets(state, ctx);
  if (command.type === 'ReevaluateAllowances') return decideAllowances(state, command.catalogVersion, ctx);
  const input = command.input;
  if (typeof input.eventId !== 'string' || input.eventId.length === 0) return reject('eventId', 'required', 'eventId is required');
  if (input.spaceId !== state.spaceId) return reject('spaceId', 'matches_stream', `event for Space ${input.spaceId} sent to Space ${state.spaceId}`);
  const known = knownFingerprint(state, input.eventId, ctx);
  if (known !== undefined) {
    if (known === inboundFingerprint(command)) return { outcome: 'duplicate', events: [] };
    return {
      outcome: 'conflict',
      events: [],
      rejection: {
        field: 'eventId',
        rule: 'event_id_conflict',
        message: `eventId ${input.eventId} was already recorded for Space ${state.spaceId} with a different payload; an eventId names one fact (send a new eventId for a new fact)`,
      },
    };
  }
  switch (command.type) {
    case 'RecordGeneration':
      return decideGeneration(state, command.input, ctx);
    case 'RecordBatchExport':
      return decideBatchExport(state, command.input, ctx);
    case 'ChangeSubscription':
      return decideSubscription(state, command.input, ctx);
  }
}

/**
 * Decides a sequence of commands for one Space, folding each decision before the next (so a
 * duplicate inside the same batch is caught). Returns the events to append in one go.
 * `state` is updated in place: clone first if the append may fail and the state is cached.
 */
export function decideAll(
  state: SpaceState,
  commands: SpaceCommand[],
  ctx: DecideContext,
): { decisions: Decision[]; events: IdentifiedSpaceEvent[]; state: SpaceState } {
  const decisions: Decision[] = [];
  const events: IdentifiedSpaceEvent[] = [];
  let s = state;
  for (const c of commands) {
    const d = decide(s, c, ctx);
    decisions.push(d);
    for (const e of d.events) {
      s = evolve(s, e);
      events.push(e);
    }
  }
  return { decisions, events, state: s };
}

// ---------------------------------------------------------------------------------------------
// Payload fingerprints: one eventId, one fact

/**
 * The fields of an inbound event that make it the fact it is, in a canonical form. Two deliveries
 * with the same eventId are the same fact when these are equal (a duplicate) and a conflict when
 * not. Not part of it: the arrival time, the spaceId (dedupe is per Space), the key, the topic.
 * Instants are compared as instants (any zone), optional fields absent or null alike.
 */
export function canonicalPayload(command: SpaceCommand): Record<string, unknown> | null {
  switch (command.type) {
    case 'RecordGeneration': {
      const i = command.input;
      return { kind: 'generation', userId: i.userId, feature: i.feature, medium: i.medium, generations: i.generations, occurredAt: instantText(i.occurredAt), batchId: i.batchId ?? null, platform: i.platform ?? null };
    }
    case 'RecordBatchExport': {
      const i = command.input;
      return { kind: 'batch', userId: i.userId, batchId: i.batchId, images: i.images, platform: i.platform, occurredAt: instantText(i.occurredAt) };
    }
    case 'ChangeSubscription': {
      const i = command.input;
      const c = i.customLimits as Partial<Limits> | null | undefined;
      return {
        kind: 'subscription', plan: i.plan, cycle: i.cycle, effectiveAt: instantText(i.effectiveAt),
        customLimits: c === null || c === undefined ? null : { ai_image_credits: c.ai_image_credits, ai_video_credits: c.ai_video_credits, batch_exports: c.batch_exports },
      };
    }
    default:
      return null;
  }
}

/** The canonical payload a recorded event was decided from (the same as its inbound command's). */
export function canonicalRecorded(event: SpaceEvent): Record<string, unknown> | null {
  const spaceId = event.data.spaceId;
  switch (event.type) {
    case 'GenerationRecorded': {
      const d = event.data;
      const input = { eventId: d.sourceEventId, spaceId, userId: d.userId, feature: d.feature, medium: d.medium, generations: d.generations, occurredAt: d.occurredAt };
      return canonicalPayload({ type: 'RecordGeneration', input: { ...input, batchId: d.batchId ?? undefined, platform: d.platform ?? undefined } });
    }
    case 'BatchExportRecorded': {
      const d = event.data;
      return canonicalPayload({ type: 'RecordBatchExport', input: { eventId: d.sourceEventId, spaceId, userId: d.userId, batchId: d.batchId, images: d.images, platform: d.platform, occurredAt: d.occurredAt } });
    }
    case 'SubscriptionChanged': {
      const d = event.data;
      const customLimits = d.plan === 'enterprise' ? (d.customLimits ?? d.limits) : undefined;
      return canonicalPayload({ type: 'ChangeSubscription', input: { eventId: d.sourceEventId, spaceId, plan: d.plan, cycle: d.cycle, effectiveAt: d.effectiveAt, customLimits } });
    }
    default:
      return null;
  }
}

function instantText(v: unknown): unknown {
  const t = parseInstant(v);
  return Number.isNaN(t) ? v : iso(t);
}

/** A 53-bit hash (cyrb53) of a string: the fingerprint kept per eventId. */
function hash53(str: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

const fingerprintOf = (canonical: Record<string, unknown> | null): number => hash53(JSON.stringify(canonical));

/** Fingerprint of an inbound command's payload. */
export const inboundFingerprint = (command: SpaceCommand): number => fingerprintOf(canonicalPayload(command));

/** Fingerprint of the payload a recorded event was decided from (equal to its inbound's). */
export const recordedFingerprint = (event: SpaceEvent): number => fingerprintOf(canonicalRecorded(event));

/** The fields whose values differ between a resent command and the recorded event (for the conflict message). */
export function payloadDifferences(command: SpaceCommand, recorded: SpaceEvent): string[] {
  const a = canonicalPayload(command) ?? {};
  const b = canonicalRecorded(recorded) ?? {};
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
