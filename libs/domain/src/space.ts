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
import type { IdentifiedSpaceEvent, SpaceEvent } from './events';
import { type Period, iso, parseInstant } from './period';
import { type Segment, limitsFor, periodAt, resetBoundaries, segmentAt, segmentIndexAt, withActivation, withSubscriptionChange } from './timeline';

// ---------------------------------------------------------------------------------------------
// State

export interface PeriodUsage {
  start: number;
  end: number | null;
  used: Limits;
  /** Generation and batch-export events recorded in the period. */
  usageEvents: number;
}

/** One recorded use, kept so usage can be attributed again when a late subscription change moves a period. */
export interface UsageItem {
  at: number;
  pool: Pool;
  amount: number;
}

export interface SpaceState {
  spaceId: string;
  /** Number of events folded: the stream's revision + 1. */
  version: number;
  /** Inbound event ids already recorded (dedupe). */
  seen: Set<string>;
  timeline: Segment[];
  /** Every recorded use, in stream order. */
  usageItems: UsageItem[];
  /**
   * Usage by period start (epoch ms): each item counts in the period of the CURRENT timeline that
   * contains its occurredAt, whatever order subscriptions and usage arrived in.
   */
  periods: Map<number, PeriodUsage>;
  /** Thresholds that fired and are not re-armed: `${periodStart}|${pool}|${threshold}`. */
  fired: Set<string>;
  /** The latest reset boundary recorded (epoch ms), or null. */
  lastResetAt: number | null;
}

export const emptyLimits = (): Limits => ({ ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 });

export function initialSpaceState(spaceId: string): SpaceState {
  return { spaceId, version: 0, seen: new Set(), timeline: [], usageItems: [], periods: new Map(), fired: new Set(), lastResetAt: null };
}

export function cloneSpaceState(s: SpaceState): SpaceState {
  const periods = new Map<number, PeriodUsage>();
  for (const [k, p] of s.periods) periods.set(k, { ...p, used: { ...p.used } });
  return {
    spaceId: s.spaceId,
    version: s.version,
    seen: new Set(s.seen),
    timeline: s.timeline.map((seg) => ({ ...seg, limits: { ...seg.limits } })),
    usageItems: [...s.usageItems],
    periods,
    fired: new Set(s.fired),
    lastResetAt: s.lastResetAt,
  };
}

export const firedKey = (periodStart: number, pool: Pool, threshold: number): string => `${periodStart}|${pool}|${threshold}`;

/** The use a usage event records: credits of its pool, or exported images. */
export function usageItemOf(
  event: Extract<SpaceEvent, { type: 'GenerationRecorded' | 'BatchExportRecorded' }>,
): UsageItem {
  return event.type === 'GenerationRecorded'
    ? { at: Date.parse(event.data.occurredAt), pool: event.data.pool, amount: event.data.credits }
    : { at: Date.parse(event.data.occurredAt), pool: 'batch_exports', amount: event.data.images };
}

function countItem(state: SpaceState, item: UsageItem): void {
  const period = periodAt(state.timeline, item.at);
  let p = state.periods.get(period.start);
  if (!p) {
    p = { start: period.start, end: period.end, used: emptyLimits(), usageEvents: 0 };
    state.periods.set(period.start, p);
  }
  p.used[item.pool] += item.amount;
  p.usageEvents += 1;
}

/** Attributes every recorded use again (after the timeline changed). */
function reattribute(state: SpaceState): void {
  state.periods = new Map();
  for (const item of state.usageItems) countItem(state, item);
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
      state.seen.add(d.sourceEventId);
      state.timeline = withSubscriptionChange(state.timeline, d);
      if (state.usageItems.length) reattribute(state);
      return state;
    }
    case 'SubscriptionActivated': {
      state.timeline = withActivation(state.timeline, event.data.sourceEventId);
      return state;
    }
    case 'GenerationRecorded':
    case 'BatchExportRecorded': {
      state.seen.add(event.data.sourceEventId);
      const item = usageItemOf(event);
      state.usageItems.push(item);
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

export function foldSpace(spaceId: string, events: Iterable<SpaceEvent>): SpaceState {
  let s = initialSpaceState(spaceId);
  for (const e of events) s = evolve(s, e);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Commands and decisions

export type SpaceCommand =
  | { type: 'RecordGeneration'; input: GenerationPerformedV1 }
  | { type: 'RecordBatchExport'; input: BatchExportedV1 }
  | { type: 'ChangeSubscription'; input: SubscriptionChangedV1 }
  | { type: 'ResetDuePeriods'; spaceId: string };

export interface DecideContext {
  /** The decision instant, epoch ms (from the injected clock). */
  now: number;
  catalog: Catalog;
  /** Deterministic id for a name: the same name always yields the same id (e.g. UUID v5). */
  eventId: (name: string) => string;
  /** How far in the future usage may be dated (default one hour). */
  maxClockSkewMs?: number;
}

export type Decision =
  | { outcome: 'accepted'; events: IdentifiedSpaceEvent[] }
  | { outcome: 'duplicate'; events: [] }
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
  const skew = checkSkew('occurredAt', occurredAt, ctx);
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
      id: ctx.eventId(`${state.spaceId}/generation/${input.eventId}`),
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
  const skew = checkSkew('occurredAt', occurredAt, ctx);
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
      id: ctx.eventId(`${state.spaceId}/batch/${input.eventId}`),
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
  const changed: IdentifiedSpaceEvent = {
    id: ctx.eventId(`${state.spaceId}/subscription/${input.eventId}`),
    type: 'SubscriptionChanged',
    data: {
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
    },
  };
  const events: IdentifiedSpaceEvent[] = [changed];
  // Limits changed for the running period: re-arm thresholds now under, fire thresholds now reached.
  // A change dated in the future is re-evaluated when the scheduler activates it.
  if (effectiveAt <= ctx.now) {
    const after = evolve(cloneSpaceState(state), changed);
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

function decideResets(state: SpaceState, ctx: DecideContext): Decision {
  const after = state.lastResetAt ?? Number.NEGATIVE_INFINITY;
  const boundaries = resetBoundaries(state.timeline, after, ctx.now);
  const events: IdentifiedSpaceEvent[] = boundaries.map((b) => {
    const period = periodAt(state.timeline, b);
    const previous = periodAt(state.timeline, b - 1);
    const seg = segmentAt(state.timeline, b, ctx.catalog);
    return {
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
      },
    };
  });
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
    const after = cloneSpaceState(state);
    for (const e of events) evolve(after, e);
    const last = due[due.length - 1];
    events.push(...reevaluateThresholds(after, last.pendingSourceEventId!, iso(last.effectiveAt), ctx));
  }
  return { outcome: 'accepted', events };
}

/** Decides what a command records. Never mutates `state`. */
export function decide(state: SpaceState, command: SpaceCommand, ctx: DecideContext): Decision {
  if (command.type === 'ResetDuePeriods') return decideResets(state, ctx);
  const input = command.input;
  if (typeof input.eventId !== 'string' || input.eventId.length === 0) return reject('eventId', 'required', 'eventId is required');
  if (input.spaceId !== state.spaceId) return reject('spaceId', 'matches_stream', `event for Space ${input.spaceId} sent to Space ${state.spaceId}`);
  if (state.seen.has(input.eventId)) return { outcome: 'duplicate', events: [] };
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
