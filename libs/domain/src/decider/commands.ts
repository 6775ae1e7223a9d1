/**
 * What the Space decider is asked (commands), what it needs (context) and what it answers (decisions).
 */
import { type Catalog, type Pool } from '../catalog/catalog';
import type { BatchExportedV1, GenerationPerformedV1, Rejection, SubscriptionChangedV1 } from '../contracts';
import type { IdentifiedSpaceEvent } from '../events';

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
  /**
   * The uses `olderUsesWanted` asked for, read from the stream (`olderUseOf`); absent when it asked
   * for none. Required to decide a subscription change whose moves the uses the state dropped from
   * its tail can change (`droppedUsesMove`): without them the decider throws.
   */
  olderUses?: readonly OlderUse[];
}

/** A use dropped from the state's tail, read back from the stream (`olderUseOf`): what its moves need, no more. */
export interface OlderUse {
  at: number;
  pool: Pool;
  amount: number;
  userId?: string;
  feature?: string;
}

export type Decision =
  | { outcome: 'accepted'; events: IdentifiedSpaceEvent[] }
  | { outcome: 'duplicate'; events: [] }
  /** The eventId was recorded with another payload: refused, nothing recorded (rule event_id_conflict). */
  | { outcome: 'conflict'; events: []; rejection: Rejection }
  | { outcome: 'rejected'; events: []; rejection: Rejection };

export const reject = (field: string, rule: string, message: string): Decision => ({
  outcome: 'rejected',
  events: [],
  rejection: { field, rule, message },
});


/** Usage from further in the future than this is refused: a producer's clock is wrong. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 3_600_000;

export function checkSkew(field: string, at: number, ctx: DecideContext): Decision | null {
  const max = ctx.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (at > ctx.now + max)
    return reject(field, 'not_in_future', `${field} is ${Math.round((at - ctx.now) / 60_000)} min in the future (at most ${Math.round(max / 60_000)} min of clock skew is accepted)`);
  return null;
}


/** True once `used` reaches `threshold` percent of `limit` (any use of a zero limit reaches every threshold). */
export function reaches(used: number, limit: number, threshold: number): boolean {
  return used > 0 && used * 100 >= threshold * limit;
}
