/**
 * The balance read model: what the usage screen, the entitlement check and the scheduler read.
 * Every adapter writes the rows and its checkpoint in ONE transaction, so a crash never leaves a
 * row applied without its checkpoint (or the reverse).
 */
import type { Limits, Segment } from '@metering/domain';
import type { StoredEvent, StoredEventJson } from '@metering/event-store';

export interface SpaceRow {
  spaceId: string;
  timeline: Segment[];
  lastResetAt: number | null;
  /** The next reset boundary to append (may be in the past when due). null: never. */
  nextResetAt: number | null;
  /** Stream revision of the last event applied. */
  revision: number;
}

export interface UsageRow {
  spaceId: string;
  periodStart: number;
  periodEnd: number | null;
  used: Limits;
  usageEvents: number;
}

export interface ThresholdRow {
  spaceId: string;
  periodStart: number;
  pool: string;
  threshold: number;
  state: 'fired' | 'rearmed';
  eventId: string;
}

/** What the fold (`applyEvent`) reads of a stored event (a `StoredEvent` is one; metadata only for its schema version). */
export type FoldedEvent = Pick<StoredEvent, 'id' | 'streamName' | 'type' | 'data' | 'revision' | 'globalPosition'> & { metadata?: Record<string, unknown> };

/** An event as a rebuild's page holds it: parsed, or still JSON text (`readAllJson`, parsed as it is folded). */
export type PageEvent = FoldedEvent | StoredEventJson;

export interface ReadModelDump {
  spaces: SpaceRow[];
  usage: UsageRow[];
  thresholds: ThresholdRow[];
}

/** The read side: what the API, the usage screen, the entitlement check and the scheduler ask. */
export interface BalanceQueries {
  /** Global position of the last event applied (0n when none): read-your-writes waits on it. */
  checkpoint(): Promise<bigint>;
  getSpace(spaceId: string): Promise<SpaceRow | null>;
  usedIn(spaceId: string, periodStart: number): Promise<Limits>;
  usage(spaceId: string): Promise<UsageRow[]>;
  /**
   * The Space's row and its usage rows read together, as of ONE state of the read model (the
   * entitlement view folds the stream after `space.revision` on top, so the two must agree).
   */
  spaceForView(spaceId: string): Promise<{ space: SpaceRow | null; usage: UsageRow[] }>;
  /** Spaces whose next reset is due at `now`, oldest first. */
  dueForReset(now: number, limit: number): Promise<string[]>;
  /** Ids of the Spaces with a row, in id order, after `after` (paging; '' from the start). */
  spaceIdsAfter(after: string, limit: number): Promise<string[]>;
}

/** The write side: what the projector and a rebuild do. */
export interface BalanceProjection {
  init(): Promise<void>;
  /** Global position of the last event applied (0n when none). */
  checkpoint(): Promise<bigint>;
  /** Applies events in global order and moves the checkpoint, atomically. Events at or before the checkpoint are skipped. */
  apply(events: StoredEvent[]): Promise<void>;
  /**
   * Optional fast path for a rebuild: applies every page with one row buffer, flushing now and
   * then (rows and checkpoint together). A page's events may still be JSON text (the store's
   * `readAllJson`): each is parsed as it is folded. Returns the number of events applied.
   */
  applyPages?(pages: AsyncIterable<readonly PageEvent[]>): Promise<number>;
  /** Drops every row and the checkpoint (for a rebuild). */
  clear(): Promise<void>;
  /** Everything, in a canonical order (rebuild equality and audits). */
  dump(): Promise<ReadModelDump>;
}

/** Positions of other store readers (the outbound relay, the allowances pass, the store's identity), kept next to the read model. */
export interface PositionStore {
  getPosition(name: string): Promise<bigint>;
  setPosition(name: string, position: bigint): Promise<void>;
  /**
   * Moves a position forward, never back: a lower value than the one kept changes nothing. For
   * readers that may run in several processes (the relay after a lease handover, schedulers): a
   * late write of a process that lost its lease cannot move the position back.
   */
  advancePosition(name: string, position: bigint): Promise<void>;
}

/** One adapter (SQLite, PostgreSQL) implements every role; each user takes the role it needs. */
export interface BalanceReadModel extends BalanceQueries, BalanceProjection, PositionStore {
  close(): Promise<void>;
}

