import {
  type Decision,
  type InboundEvent,
  type Rejection,
  type DecideContext,
  type SpaceCommand,
  type SpaceState,
  decideAll,
  decodeSpaceEvent,
  encodeSpaceEvent,
  inboundEventIdOf,
  olderUsesWanted,
  payloadDifferences,
  recordedFingerprint,
  recordedIdOf,
  recordedIdsToLookUp,
  spaceStreamName,
} from '@metering/domain';
import { AppendTooLargeError, type EventStore, WrongExpectedRevisionError } from '@metering/event-store';
import type { CatalogService } from '../catalog/catalog.service';
import type { Clock, IdGenerator } from '../infra/clock';
import { KeyedMutex } from './keyed-mutex';
import type { SpaceRepository } from './space-repository';

export type Outcome =
  | { outcome: 'accepted'; eventId?: string; spaceId: string; position: string; recorded: string[] }
  | { outcome: 'duplicate'; eventId?: string; spaceId: string }
  /** The eventId was recorded with another payload: refused (rule event_id_conflict), nothing recorded. */
  | { outcome: 'conflict'; eventId?: string; spaceId: string; errors: Rejection[] }
  | { outcome: 'rejected'; eventId?: string; spaceId?: string; errors: Rejection[] };

export function commandOf(event: InboundEvent): SpaceCommand {
  const { type, ...input } = event;
  switch (type) {
    case 'generation-performed':
      return { type: 'RecordGeneration', input: input as never };
    case 'batch-exported':
      return { type: 'RecordBatchExport', input: input as never };
    case 'subscription-changed':
      return { type: 'ChangeSubscription', input: input as never };
  }
}

const MAX_ATTEMPTS = 20;

/**
 * Parse-validate-decide-append for Space commands. Per Space: load state, decide every command in
 * order, append the decided events in ONE append with the exact expected revision; on a
 * concurrency conflict reload and decide again (never merge blindly).
 */
export class IngestService {
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly store: EventStore,
    private readonly spaces: SpaceRepository,
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
  ) {}

  /**
   * Commands for one Space, decided and appended together. Outcomes in input order. When their
   * events exceed the store's append budget (AppendTooLargeError, thrown before anything is
   * written), the commands are split in two consecutive decisions, each one append: as if they had
   * arrived in two batches. One command alone over the budget is rejected (rule append_too_large)
   * so that the input moves on (Kafka: to the dead letters) instead of failing forever.
   *
   * `current`: a decision that appends nothing is made again on the stream as stored before it is
   * answered. The Space state is cached in this process, and a stale copy is caught by the expected
   * revision only when something is appended: another replica of the service may have appended
   * since (e.g. a cycle change that brings a boundary forward), so a scheduled reset found "not due"
   * on the copy may be due. The scheduler asks for this (one stream read per Space it finds due).
   */
  async executeForSpace(spaceId: string, commands: SpaceCommand[], options: { current?: boolean } = {}): Promise<Outcome[]> {
    try {
      return await this.executeOnce(spaceId, commands, options.current === true);
    } catch (err) {
      if (!(err instanceof AppendTooLargeError)) throw err;
      if (commands.length === 1) {
        const c = commands[0];
        const eventId = inboundEventIdOf(c);
        return [{ outcome: 'rejected', eventId, spaceId, errors: [{ field: '', rule: 'append_too_large', message: err.message }] }];
      }
      const mid = Math.ceil(commands.length / 2);
      const first = await this.executeForSpace(spaceId, commands.slice(0, mid), options);
      return [...first, ...(await this.executeForSpace(spaceId, commands.slice(mid), options))];
    }
  }

  private async executeOnce(spaceId: string, commands: SpaceCommand[], current = false): Promise<Outcome[]> {
    await this.catalog.refreshIfStale(this.clock.now());
    return this.locks.run(spaceId, async () => {
      for (let attempt = 1; ; attempt++) {
        const now = this.clock.now();
        const state = attempt === 1 ? await this.spaces.load(spaceId, now) : await this.spaces.refresh(spaceId, now);
        const ctx: DecideContext = {
          now,
          catalog: this.catalog.catalog,
          eventId: (n: string) => this.ids.deterministic(n),
          correctionWindowMs: this.spaces.correctionWindowMs,
        };
        ctx.alreadyRecorded = await this.alreadyRecorded(spaceId, state, commands, ctx);
        const older = olderUsesWanted(state, commands, ctx);
        if (older !== null) ctx.olderUses = await this.spaces.olderUses(state, older);
        const version = state.version;
        // Decided on the cached state, in place (no copy): if the append fails, the cache entry is
        // dropped and the next attempt reloads it.
        const { decisions, events, state: next } = decideAll(state, commands, ctx);
        await this.nameConflicts(spaceId, commands, decisions, ctx);
        if (events.length === 0) {
          // Nothing to append, so no expected revision checks the cached state: read the stream's
          // newer events, if any, and decide again (attempt 2 refreshes).
          if (current && attempt === 1) continue;
          return decisions.map((d, i) => this.outcomeOf(spaceId, commands[i], d, '0', []));
        }
        try {
          const result = await this.store.append(
            spaceStreamName(spaceId),
            events.map(encodeSpaceEvent),
            version === 0 ? 'no_stream' : version - 1,
          );
          if (result.alreadyAppended && attempt < MAX_ATTEMPTS) {
            // Another writer (a second consumer of a redelivered batch) appended these very events
            // first: nothing was written by this call. Decide again on the stream as stored, so the
            // inbound events are answered as the duplicates they are, never counted twice.
            this.spaces.invalidate(spaceId);
            continue;
          }
          this.spaces.appended(next, now);
          this.store.notify?.();
          const position = result.lastGlobalPosition.toString();
          return decisions.map((d, i) => this.outcomeOf(spaceId, commands[i], d, position, d.events.map((e) => e.type)));
        } catch (err) {
          this.spaces.invalidate(spaceId);
          if (err instanceof WrongExpectedRevisionError && attempt < MAX_ATTEMPTS) {
            await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) * Math.random()));
            continue;
          }
          throw err;
        }
      }
    });
  }

  /**
   * Inbound ids of uses older than what the state keeps that the store already recorded (by their
   * deterministic ids): a redelivery at any age is a duplicate, not "too late".
   */
  private async alreadyRecorded(spaceId: string, state: SpaceState, commands: SpaceCommand[], ctx: DecideContext) {
    const wanted = recordedIdsToLookUp(state, commands, ctx);
    if (wanted.size === 0 || !this.store.readEventsById) return undefined;
    const stream = spaceStreamName(spaceId);
    const byLower = new Map([...wanted].map(([id, inbound]) => [id.toLowerCase(), inbound]));
    const found = await this.store.readEventsById([...byLower.keys()]);
    const out = new Map<string, number>();
    for (const e of found) {
      const recorded = e.streamName === stream && byLower.has(e.id.toLowerCase()) ? decodeSpaceEvent(e) : null;
      if (recorded) out.set(byLower.get(e.id.toLowerCase())!, recordedFingerprint(recorded));
    }
    return out;
  }

  /**
   * A conflict's message names the fields that differ from the recorded event: the batch's
   * conflicting events read from the store in one query (rare path).
   */
  private async nameConflicts(spaceId: string, commands: SpaceCommand[], decisions: Decision[], ctx: DecideContext): Promise<void> {
    if (!this.store.readEventsById) return;
    const conflicts = new Map<string, number[]>();
    decisions.forEach((d, i) => {
      const id = d.outcome === 'conflict' ? recordedIdOf(spaceId, commands[i], ctx.eventId)?.toLowerCase() : undefined;
      if (id) conflicts.set(id, [...(conflicts.get(id) ?? []), i]);
    });
    if (conflicts.size === 0) return;
    for (const stored of await this.store.readEventsById([...conflicts.keys()])) {
      for (const i of conflicts.get(stored.id.toLowerCase()) ?? []) {
        const d = decisions[i];
        if (d.outcome !== 'conflict') continue;
        const recorded = decodeSpaceEvent(stored);
        const fields = recorded ? payloadDifferences(commands[i], recorded) : [];
        if (fields.length) d.rejection.message = `${d.rejection.message}; differs in: ${fields.join(', ')}`;
      }
    }
  }

  /** Inbound events for any Spaces: grouped by Space (order kept per Space), Spaces in parallel. */
  async ingest(events: InboundEvent[]): Promise<Outcome[]> {
    const bySpace = new Map<string, number[]>();
    events.forEach((e, i) => {
      const list = bySpace.get(e.spaceId) ?? [];
      list.push(i);
      bySpace.set(e.spaceId, list);
    });
    const outcomes = new Array<Outcome>(events.length);
    // The Spaces not in the cache are read in one batched store read, not one read per Space.
    await this.spaces.prefetch(bySpace.keys(), this.clock.now());
    await Promise.all(
      [...bySpace].map(async ([spaceId, idx]) => {
        const res = await this.executeForSpace(spaceId, idx.map((i) => commandOf(events[i])));
        res.forEach((o, k) => (outcomes[idx[k]] = o));
      }),
    );
    return outcomes;
  }

  private outcomeOf(spaceId: string, command: SpaceCommand, d: Decision, position: string, recorded: string[]): Outcome {
    const eventId = inboundEventIdOf(command);
    if (d.outcome === 'rejected') return { outcome: 'rejected', eventId, spaceId, errors: [d.rejection] };
    if (d.outcome === 'conflict') return { outcome: 'conflict', eventId, spaceId, errors: [d.rejection] };
    if (d.outcome === 'duplicate') return { outcome: 'duplicate', eventId, spaceId };
    return { outcome: 'accepted', eventId, spaceId, position, recorded };
  }
}
