/**
 * The Space decider: decide(command, state, context) -> events; evolve(state, event) -> state.
 * Pure: the clock (`now`), the catalog and the id generator come in through the context.
 */
import type { IdentifiedSpaceEvent } from './events';
import { type DecideContext, type Decision, type SpaceCommand, reject } from './decider/commands';
import { decideBatchExport, decideGeneration, knownFingerprint } from './decider/decide-usage';
import { decideAllowances, decideResets, decideSubscription } from './decider/decide-subscription';
import { inboundFingerprint } from './decider/fingerprint';
import { type SpaceState, evolve } from './decider/state';

export {
  type PeriodUsage,
  type UsageItem,
  type SpaceState,
  initialSpaceState,
  cloneSpaceState,
  firedKey,
  usageItemOf,
  addUse,
  applyPeriodMove,
  attributionMoves,
  applyChangeToPeriods,
  changeMoves,
  BATCH_EXPORT_FEATURE,
  evolve,
  foldSpace,
} from './decider/state';
export {
  DEFAULT_CORRECTION_WINDOW_MS,
  COMPACTION_STEP_MS,
  USES_KEPT_MAX,
  usageCutoff,
  compactSpace,
  trimUses,
  SPACE_SNAPSHOT_SCHEMA,
  snapshotOfSpace,
  spaceFromSnapshot,
} from './decider/window';
export { type SpaceCommand, type DecideContext, type OlderUse, type Decision, inboundEventIdOf, DEFAULT_MAX_CLOCK_SKEW_MS, reaches } from './decider/commands';
export { recordedIdOf, recordedIdsToLookUp } from './decider/decide-usage';
export { lastResetBoundary, MEMBER_MOVES_MAX, type OlderUsesWanted, olderUsesWanted, olderUseOf } from './decider/decide-subscription';
export { canonicalPayload, canonicalRecorded, inboundFingerprint, recordedFingerprint, payloadDifferences } from './decider/fingerprint';

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
