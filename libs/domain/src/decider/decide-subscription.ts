/**
 * Decisions on the timeline: subscription changes, resets, activations and catalog allowance changes.
 */
import { type Cycle, CYCLES, type Limits, type Plan, PLANS, POOLS, catalogVersionAt, effectiveFromMs, resetFamilyOf } from '../catalog/catalog';
import type { SubscriptionChangedV1 } from '../contracts';
import type { IdentifiedSpaceEvent, SpaceEvent, SubscriptionChangedData } from '../events';
import { DAY_MS, iso, parseInstant } from '../period';
import { type Segment, type Timeline, limitsFor, periodAt, resetBoundaries, segmentAt, segmentIndexAt, withSubscriptionChange } from '../timeline';
import { type DecideContext, type Decision, type OlderUse, type SpaceCommand, reaches, reject } from './commands';
import { crossedThresholds, cutoffFor, recordedIdOf } from './decide-usage';
import { emptyLimits } from '../catalog/pricing';
import { type SpaceState, applyChangeToPeriods, changeMoves, evolve, firedKey, usageItemOf, usesSince } from './state';

const isLimits = (v: unknown): v is Limits =>
  typeof v === 'object' &&
  v !== null &&
  POOLS.every((p) => Number.isInteger((v as Record<string, unknown>)[p]) && ((v as Record<string, number>)[p] ?? -1) >= 0);

/** A change as `decideSubscription` makes it, before its moves: the event's data and the timeline after it. */
interface PreparedChange {
  effectiveAt: number;
  cutoff: number;
  data: SubscriptionChangedData;
  timeline: Segment[];
}

export function decideSubscription(state: SpaceState, input: SubscriptionChangedV1, ctx: DecideContext): Decision {
  const prepared = prepareChange(state, input, ctx);
  if ('outcome' in prepared) return prepared;
  const { effectiveAt, cutoff, data, timeline } = prepared;
  const wanted = olderUsesWantedFor(state, [effectiveAt], cutoff);
  if (ctx.olderUses === undefined && wanted !== null && droppedUsesMove(state, state.timeline, timeline, wanted, cutoff))
    throw new Error(`Space ${state.spaceId}: deciding a subscription change needs the uses dropped from the state's tail (olderUsesWanted, then DecideContext.olderUses)`);
  const { moves, memberMoves } = changeMoves(state.timeline, timeline, usesSince(state, cutoff, ctx.olderUses));
  data.moves = moves;
  // Bounded, so that the event stays well inside every store's append budget (KurrentDB's 960 KiB):
  // past the bound the balances still move (`moves`) and the breakdown keeps the recorded periods.
  if (memberMoves.length > 0 && memberMoves.length <= MEMBER_MOVES_MAX) data.memberMoves = memberMoves;
  const changed: IdentifiedSpaceEvent = { id: recordedIdOf(state.spaceId, { type: 'ChangeSubscription', input }, ctx.eventId)!, type: 'SubscriptionChanged', data };
  const events: IdentifiedSpaceEvent[] = [changed];
  // Limits changed for the running period: re-arm thresholds now under, fire thresholds now reached.
  // A change dated in the future is re-evaluated when the scheduler activates it.
  if (effectiveAt <= ctx.now) {
    // The state after the change, without touching `state`: moves replace period entries, never mutate them.
    const periods = new Map(state.periods);
    const fired = data.clearsPeriod === undefined ? state.fired : new Set(state.fired);
    applyChangeToPeriods(periods, fired, data.clearsPeriod, data.moves);
    const after: SpaceState = { ...state, timeline, periods, fired };
    const inForce = limitsFor(after.timeline, periodAt(after.timeline, ctx.now), ctx.now, ctx.catalog);
    if (inForce.effectiveAt === effectiveAt && inForce.plan === input.plan && inForce.cycle === input.cycle)
      events.push(...reevaluateThresholds(after, input.eventId, iso(effectiveAt), ctx));
  }
  return { outcome: 'accepted', events };
}

/** The change a command asks for, checked (or its rejection): the event's data without its moves, and the timeline after it. */
function prepareChange(state: SpaceState, input: SubscriptionChangedV1, ctx: DecideContext): PreparedChange | Decision {
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
  const cutoff = cutoffFor(state, ctx);
  const previousIdx = segmentIndexAt(state.timeline, effectiveAt);
  const previous = segmentAt(state.timeline, effectiveAt, ctx.catalog);
  const reanchored = previous.family !== family;
  const settled = settledPeriod(state.timeline, effectiveAt, cutoff);
  const data: SubscriptionChangedData = {
    spaceId: state.spaceId,
    sourceEventId: input.eventId,
    plan: input.plan,
    cycle: input.cycle,
    effectiveAt: iso(effectiveAt),
    limits,
    customLimits: input.plan === 'enterprise' ? { ...limits } : null,
    catalogVersion: cv.version,
    anchorAt: '', // derived below by the timeline (insertSegment), the one anchor rule
    resetFamily: family,
    reanchored,
    previous: previousIdx < 0 ? null : { plan: previous.plan, cycle: previous.cycle },
    decidedAt: iso(ctx.now),
    moves: [],
    // The carry rule (a change of reset family keeps the usage of the period it interrupts) never
    // reaches a settled period: one that had ended by the corrections window's start. A change
    // back-dated into a settled period starts a fresh period at its effectiveAt (`keepsUsage`
    // absent), so no decision ever reads a period the window has closed (`settledPeriod`).
    ...(settled ? {} : { keepsUsage: true as const }),
  };
  // Uses inside the window whose period the change moves (usage older than the window stays in
  // the period it was recorded in): recorded, so read models apply them without keeping uses.
  const timeline = withSubscriptionChange(state.timeline, data);
  data.anchorAt = iso(timeline[segmentIndexAt(timeline, effectiveAt)].anchorAt);
  const cleared = settled ? clearsSettledPeriod(state.timeline, timeline, cutoff) : null;
  if (cleared !== null) data.clearsPeriod = iso(cleared);
  return { effectiveAt, cutoff, data, timeline };
}

/** The uses a decision needs read back from the stream: those that occurred in [from, to), from this revision on. */
export interface OlderUsesWanted {
  fromRevision: number;
  from: number;
  to: number;
}

/**
 * What the commands need read back from the Space's stream before they are decided: the uses a
 * subscription change may move that the state dropped from its tail (`trimUses`), or null. A
 * change moves only uses from the start of the period containing its effectiveAt (as the state's
 * timeline has it) and inside the window; the read starts at the lowest revision of a use dropped
 * from that day on; none is made when the dropped uses cannot change the change's moves
 * (`droppedUsesMove`). The caller reads, keeps what `olderUseOf` gives, and passes it as
 * `DecideContext.olderUses` (nothing when this is null: the decider then checks that no change it
 * decides needed them, and throws if one did).
 */
export function olderUsesWanted(state: SpaceState, commands: readonly SpaceCommand[], ctx: DecideContext): OlderUsesWanted | null {
  const changes: SubscriptionChangedV1[] = [];
  for (const c of commands) if (c.type === 'ChangeSubscription') changes.push(c.input);
  if (changes.length === 0) return null;
  const cutoff = cutoffFor(state, ctx);
  const wanted = olderUsesWantedFor(state, changes.map((c) => parseInstant(c.effectiveAt)), cutoff);
  if (wanted === null) return null;
  // One change among usage (which adds uses and moves no period boundary): the state it is decided
  // on has this timeline and cutoff, so whether the dropped uses matter is known now. Otherwise
  // (several changes, or scheduler commands) the read is made whenever a change may need it.
  if (changes.length === 1 && commands.every((c) => c.type === 'ChangeSubscription' || c.type === 'RecordGeneration' || c.type === 'RecordBatchExport')) {
    const prepared = prepareChange(state, changes[0], ctx);
    if ('outcome' in prepared || !droppedUsesMove(state, state.timeline, prepared.timeline, wanted, cutoff)) return null;
  }
  return wanted;
}

/**
 * Whether the uses dropped from a state's tail in `[wanted.from, wanted.to)` can change the moves of
 * a change from timeline `before` to `after` (`changeMoves`), i.e. whether they must be read back.
 * They cannot when every one of them keeps its period's start: a use whose period only changed its
 * end leaves its period's entry and joins it again (a net move of nothing, no member move), and
 * what it leaves is that entry's new end, which a use the state holds in the same period and the
 * same new period records too. So, for each period of `before` over the range: the period of
 * `after` there has the same start and covers the range's part of it, and either it is the same
 * period or a use the state holds (inside the window) is in both. A change effective now or later
 * (it cuts the running period, or changes nothing before it) mostly needs no read; one back-dated
 * past a period boundary does. Conservative: true whenever this cannot be told from the state.
 */
function droppedUsesMove(state: SpaceState, before: Timeline, after: Timeline, wanted: OlderUsesWanted, cutoff: number): boolean {
  for (let t = wanted.from; t < wanted.to; ) {
    const was = periodAt(before, t);
    const is = periodAt(after, t);
    if (is.start !== was.start) return true;
    const upTo = Math.min(was.end ?? Number.POSITIVE_INFINITY, wanted.to);
    if (is.end !== null && is.end < upTo) return true;
    if (is.end !== was.end && !holdsUseIn(state, was.start, Math.min(was.end ?? Number.POSITIVE_INFINITY, is.end ?? Number.POSITIVE_INFINITY), cutoff)) return true;
    if (was.end === null) break;
    t = was.end;
  }
  return false;
}

/**
 * Whether the state holds a use inside the window in [from, to): with `from` the start of a period
 * under both timelines and `to` the earlier of its two ends, such a use is in that period under both.
 */
function holdsUseIn(state: SpaceState, from: number, to: number, cutoff: number): boolean {
  for (const u of state.recent.values()) if (u.at >= cutoff && u.at >= from && u.at < to) return true;
  return false;
}

function olderUsesWantedFor(state: SpaceState, effectiveAts: readonly number[], cutoff: number): OlderUsesWanted | null {
  if (!(state.keptFrom > cutoff) || state.droppedRevs.size === 0) return null;
  let earliest = Number.POSITIVE_INFINITY;
  for (const at of effectiveAts) if (!Number.isNaN(at)) earliest = Math.min(earliest, at, periodAt(state.timeline, at).start);
  const from = Math.max(cutoff, earliest);
  if (!(from < state.keptFrom)) return null;
  const fromDay = Math.floor(from / DAY_MS);
  let fromRevision = Number.POSITIVE_INFINITY;
  for (const [day, rev] of state.droppedRevs) if (day >= fromDay && rev < fromRevision) fromRevision = rev;
  return Number.isFinite(fromRevision) ? { fromRevision, from, to: state.keptFrom } : null;
}

/** The use a stored event records, if it is one that `wanted` asks for and the state does not hold. */
export function olderUseOf(state: SpaceState, wanted: OlderUsesWanted, event: SpaceEvent): OlderUse | null {
  if (event.type !== 'GenerationRecorded' && event.type !== 'BatchExportRecorded') return null;
  const use = usageItemOf(event);
  if (use.at < wanted.from || use.at >= wanted.to || state.recent.has(use.id)) return null;
  return { at: use.at, pool: use.pool, amount: use.amount, userId: use.userId, feature: use.feature };
}

/**
 * At most this many member moves are recorded on a change (about 200 bytes each as JSON): a
 * change that moves usage of more (member, feature) pairs records its period moves only.
 */
export const MEMBER_MOVES_MAX = 2000;

/**
 * Whether a change effective at `effectiveAt` falls into a settled period: one that ended at or
 * before `cutoff` (the corrections window's start), so no usage can reach it any more and
 * compaction may have dropped it. Only a change back-dated beyond the window can.
 */
export function settledPeriod(timeline: Timeline, effectiveAt: number, cutoff: number): boolean {
  if (effectiveAt >= cutoff) return false;
  const interrupted = periodAt(timeline, effectiveAt);
  return interrupted.end !== null && interrupted.end <= cutoff;
}

/**
 * The start whose record a change back-dated into a settled period (`settledPeriod`) clears, or
 * null. Such a change starts a fresh period at its effectiveAt, and after it (`after`) the first
 * period a decision can still read is the one containing `cutoff`. What the state holds under that
 * period's start was recorded for something else: a settled period that began at the same instant
 * (its usage stays in the period it was recorded in, which no longer exists), or thresholds of a
 * period that an earlier change re-keyed. Whether the state still holds it depends on when it was
 * compacted, so the change records the start (`clearsPeriod`) and every reader clears it before
 * the change's moves. The one start kept is that of the period containing `cutoff` before the
 * change (`before`): its record is always held, and it goes on in the period that now starts there.
 */
export function clearsSettledPeriod(before: Timeline, after: Timeline, cutoff: number): number | null {
  const start = periodAt(after, cutoff).start;
  return start === periodAt(before, cutoff).start ? null : start;
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
export function decideResets(state: SpaceState, ctx: DecideContext): Decision {
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
export function decideAllowances(state: SpaceState, catalogVersion: number, ctx: DecideContext): Decision {
  const v = ctx.catalog.versions.find((x) => x.version === catalogVersion);
  if (!v || effectiveFromMs(v) > ctx.now) return { outcome: 'accepted', events: [] };
  return { outcome: 'accepted', events: reevaluateThresholds(state, `catalog-v${catalogVersion}`, iso(Math.max(effectiveFromMs(v), 0)), ctx) };
}
