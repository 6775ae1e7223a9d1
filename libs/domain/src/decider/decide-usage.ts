/**
 * Decisions on usage (generations and batch exports): dedupe by id, the corrections window, prices
 * and caps, thresholds.
 */
import { type Pool, catalogVersionAt } from '../catalog/catalog';
import type { BatchExportedV1, GenerationPerformedV1 } from '../contracts';
import type { IdentifiedSpaceEvent } from '../events';
import { DAY_MS, type Period, iso, isoOfParsed, parseInstant } from '../period';
import { limitsFor, periodAt } from '../timeline';
import { batchCap, batchFits, creditsFor, featurePrice, isPositiveInt, pricesFeature } from '../catalog/pricing';
import { type DecideContext, type Decision, type SpaceCommand, checkSkew, reaches, reject } from './commands';
import { type SpaceState, firedKey } from './state';
import { DEFAULT_CORRECTION_WINDOW_MS, usageCutoff } from './window';

function isOpen(period: Period, now: number): boolean {
  return period.end === null || period.end > now;
}

/**
 * Thresholds newly reached by a pool's usage in an open period: at most once per
 * (period, pool, threshold) until re-armed.
 */
export function crossedThresholds(
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
  /** The instant the use occurred, and its ISO text (formatted once: the recorded event and any threshold carry it). */
  occurredAt: { ms: number; text: string },
  build: (period: Period) => IdentifiedSpaceEvent,
  ctx: DecideContext,
): Decision {
  const period = periodAt(state.timeline, occurredAt.ms);
  const recorded = build(period);
  const events: IdentifiedSpaceEvent[] = [recorded];
  // A late event for a closed period counts there and does not notify about a period that is over.
  if (amount > 0 && isOpen(period, ctx.now)) {
    const used = (state.periods.get(period.start)?.used[pool] ?? 0) + amount;
    const seg = limitsFor(state.timeline, period, ctx.now, ctx.catalog);
    const thresholds = catalogVersionAt(ctx.catalog, ctx.now).thresholds;
    events.push(...crossedThresholds(state, period, pool, used, seg.limits[pool], thresholds, sourceEventId, occurredAt.text, ctx));
  }
  return { outcome: 'accepted', events };
}

export function decideGeneration(state: SpaceState, input: GenerationPerformedV1, ctx: DecideContext): Decision {
  const occurredAt = parseInstant(input.occurredAt);
  if (Number.isNaN(occurredAt)) return reject('occurredAt', 'iso_instant', 'occurredAt must be an ISO-8601 instant with a zone');
  if (!isPositiveInt(input.generations)) return reject('generations', 'positive_integer', 'generations must be an integer >= 1');
  const skew = checkSkew('occurredAt', occurredAt, ctx) ?? checkTooLate(state, occurredAt, ctx);
  if (skew) return skew;
  // Priced with the version in force when it occurred; a feature that version does not know is
  // priced with the version in force now (so a dead letter re-driven after a catalog update passes).
  let cv = catalogVersionAt(ctx.catalog, occurredAt);
  if (!pricesFeature(cv, input.feature)) cv = catalogVersionAt(ctx.catalog, ctx.now);
  const priced = featurePrice(cv, input.feature);
  if (!priced.ok) return { outcome: 'rejected', events: [], rejection: priced.rejection };
  const { price, pool } = priced;
  if (input.medium !== price.medium)
    return reject('medium', 'matches_feature', `feature ${input.feature} produces ${price.medium}, not ${String(input.medium)}`);
  const credits = creditsFor(price, input.generations);
  const occurredAtText = isoOfParsed(input.occurredAt, occurredAt);
  return decideUsage(
    state,
    input.eventId,
    pool,
    credits,
    { ms: occurredAt, text: occurredAtText },
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
        occurredAt: occurredAtText,
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

export function decideBatchExport(state: SpaceState, input: BatchExportedV1, ctx: DecideContext): Decision {
  const occurredAt = parseInstant(input.occurredAt);
  if (Number.isNaN(occurredAt)) return reject('occurredAt', 'iso_instant', 'occurredAt must be an ISO-8601 instant with a zone');
  const skew = checkSkew('occurredAt', occurredAt, ctx) ?? checkTooLate(state, occurredAt, ctx);
  if (skew) return skew;
  // The version in force when it occurred; if that one refuses the batch, the version in force now
  // (so a dead letter re-driven after a catalog update passes).
  let cv = catalogVersionAt(ctx.catalog, occurredAt);
  if (!batchFits(cv, input.platform, input.images) && batchFits(catalogVersionAt(ctx.catalog, ctx.now), input.platform, input.images)) cv = catalogVersionAt(ctx.catalog, ctx.now);
  const capped = batchCap(cv, input.platform);
  if (!capped.ok) return { outcome: 'rejected', events: [], rejection: capped.rejection };
  const { cap } = capped;
  if (!isPositiveInt(input.images)) return reject('images', 'positive_integer', 'images must be an integer >= 1');
  if (input.images > cap) return reject('images', 'per_batch_cap', `a batch holds at most ${cap} images on ${input.platform}; got ${input.images}`);
  const occurredAtText = isoOfParsed(input.occurredAt, occurredAt);
  return decideUsage(
    state,
    input.eventId,
    'batch_exports',
    input.images,
    { ms: occurredAt, text: occurredAtText },
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
        occurredAt: occurredAtText,
        catalogVersion: cv.version,
        periodStart: iso(period.start),
        periodEnd: period.end === null ? null : iso(period.end),
      },
    }),
    ctx,
  );
}

const isKnown = (state: SpaceState, eventId: string): boolean => state.recent.has(eventId) || state.subscriptionIds.has(eventId);

/** The fingerprint recorded for an inbound eventId, if the state or the store lookup knows it. */
export function knownFingerprint(state: SpaceState, eventId: string, ctx: DecideContext): number | undefined {
  return state.recent.get(eventId)?.fp ?? state.subscriptionIds.get(eventId) ?? ctx.alreadyRecorded?.get(eventId);
}

/** The earliest occurredAt usage may have for this decision (`usageCutoff` with the context's window). */
export const cutoffFor = (state: SpaceState, ctx: DecideContext): number => usageCutoff(state, ctx.now, ctx.correctionWindowMs ?? DEFAULT_CORRECTION_WINDOW_MS);

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
 * Usage commands the state cannot dedupe on its own: they occurred before the cutoff or before the
 * tail of uses kept (`keptFrom`), so their ids, if ever recorded, were compacted or trimmed away.
 * Returns stored-event id -> inbound eventId; the caller looks the ids up in the store and passes
 * the inbound ids found as `alreadyRecorded`.
 */
export function recordedIdsToLookUp(state: SpaceState, commands: readonly SpaceCommand[], ctx: DecideContext): Map<string, string> {
  const out = new Map<string, string>();
  // Every use at or after this is in the state; older ones may have been dropped (or compacted).
  const keptFrom = Math.max(cutoffFor(state, ctx), state.keptFrom);
  for (const c of commands) {
    if (c.type !== 'RecordGeneration' && c.type !== 'RecordBatchExport') continue;
    if (typeof c.input.eventId !== 'string' || isKnown(state, c.input.eventId)) continue;
    const at = parseInstant(c.input.occurredAt);
    if (Number.isNaN(at) || at >= keptFrom) continue;
    const id = recordedIdOf(state.spaceId, c, ctx.eventId);
    if (id) out.set(id, c.input.eventId);
  }
  return out;
}
