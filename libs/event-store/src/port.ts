/**
 * The event-store port. Every adapter (SQLite, PostgreSQL, KurrentDB) implements it and
 * passes the contract suite in ./contract. Vendor errors and revisions are translated
 * inside the adapter; callers only ever see the types below.
 */

/** What a caller hands to append: the id must be deterministic (derived from the cause). */
export interface NewEvent {
  /** UUID. Deterministic: the same cause always yields the same id. */
  id: string;
  type: string;
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

export interface StoredEvent {
  id: string;
  streamName: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  /** 0-based position of the event inside its stream. */
  revision: number;
  /**
   * Strictly increasing across the whole store, in commit order. Never reused. OPAQUE: a token
   * the store hands out and takes back (`readAll({after})`, `subscribe({after})`), comparable
   * within one store, never dense (KurrentDB's are sparse byte offsets): callers never subtract,
   * add to, or invent one. Values from outside (an HTTP `since`) are checked with `hasPosition`;
   * saved ones carry `storeId()`.
   */
  globalPosition: bigint;
  /** When the store recorded it (ISO-8601). Informational only. */
  recordedAt: string;
}

/**
 * A stored event with its data and metadata still in their stored JSON text, and no `recordedAt`:
 * what `readAllJson` returns to a reader that parses each event once, folds it and drops it (a
 * rebuild). A page of these holds strings only, so the objects parsed from it die young (a page of
 * `StoredEvent`s holds every parsed object until the page is done).
 */
export interface StoredEventJson {
  id: string;
  streamName: string;
  type: string;
  /** The data as JSON text: `JSON.parse(dataJson)` deep-equals the `StoredEvent`'s `data`. */
  dataJson: string;
  /** The metadata as JSON text, or null when it is empty (`{}`, what most events carry). */
  metadataJson: string | null;
  revision: number;
  globalPosition: bigint;
}

/**
 * Expected state of a stream for an append:
 *  - 'no_stream': the stream must not exist;
 *  - 'any': no check (only for streams with a single writer, e.g. the catalog);
 *  - a number: the exact revision of the stream's last event.
 */
export type ExpectedRevision = 'no_stream' | 'any' | number;

export interface AppendResult {
  /** Revision of the last event in the stream after the append. */
  nextExpectedRevision: number;
  /** Global position of the last event appended (or of the already-stored copy). */
  lastGlobalPosition: bigint;
  /**
   * true when every event id of the append was already stored in this stream in the same
   * order at the end of it (an idempotent retry): nothing was written.
   */
  alreadyAppended: boolean;
}

export interface ReadStreamOptions {
  /** First revision to return (inclusive). Default 0. */
  fromRevision?: number;
  /** Max events to return. Default: all. */
  maxCount?: number;
}

export interface ReadAllOptions {
  /** Return events with globalPosition strictly greater than this. Default: from the start. */
  after?: bigint;
  maxCount?: number;
  /** Only streams whose name starts with this prefix (e.g. 'space-'). */
  streamPrefix?: string;
  /** Only these event types. */
  types?: string[];
}

export interface Subscription {
  /** Stops the subscription; resolves once no handler call is running. */
  stop(): Promise<void>;
}

export interface SubscribeOptions extends Omit<ReadAllOptions, 'maxCount'> {
  /** Called with each page of events, in global order. A throw stops the subscription and is passed to onError. */
  handler: (events: StoredEvent[]) => Promise<void> | void;
  onError?: (err: unknown) => void;
  /** Poll interval when caught up (adapters with push may ignore it). Default 200 ms. */
  pollIntervalMs?: number;
  batchSize?: number;
}

/** One stream's part of an `appendMany` batch. */
export interface AppendRequest {
  streamName: string;
  events: NewEvent[];
  expected: ExpectedRevision;
}

/**
 * A snapshot of a stream's folded state at a revision. A cache, never a source of truth: a reader
 * checks `schema` (and whatever it put in `data`) and folds the events after `revision`; deleting
 * every snapshot changes no answer, only speed. The store keeps the latest one per stream.
 */
export interface Snapshot {
  streamName: string;
  /** Revision of the last event folded into it. */
  revision: number;
  /** Version of the writer's state layout; readers ignore schemas they do not know. */
  schema: number;
  /** Opaque to the store (the writer's serialisation, e.g. JSON). */
  data: string;
}

/** One stream's part of a `readColdStarts` answer: what `readSnapshot` and `readStream` would return. */
export interface ColdStart {
  /** The stream's latest snapshot, or null. */
  snapshot: Snapshot | null;
  /**
   * The stream's events from revision `snapshot.revision + 1` (0 without a snapshot), in revision
   * order, at most `maxCount` of them (a full page: read on with `readStream`).
   */
  events: StoredEvent[];
}

export interface EventStore {
  /** Appends atomically (all or none). Throws WrongExpectedRevisionError on a revision mismatch. */
  append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /**
   * Optional. Appends to several streams in ONE transaction: every request is written or none
   * is (any error, e.g. one WrongExpectedRevisionError, writes nothing). Requests are applied in
   * order, so a stream may appear twice (the second expects the revision left by the first).
   * Results are in request order; an idempotent retry of one request reports alreadyAppended.
   */
  appendMany?(batch: AppendRequest[]): Promise<AppendResult[]>;
  /** Events of one stream in revision order. Unknown stream: []. */
  readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /** Current revision of a stream, or -1 when it does not exist. */
  streamRevision(streamName: string): Promise<number>;
  /** All events in global (commit) order; never skips an event that commits late. */
  readAll(options?: ReadAllOptions): Promise<StoredEvent[]>;
  /**
   * Optional. The same events as `readAll` with the same options (same order, same paging, same
   * filters), each as `StoredEventJson`: data and metadata left as JSON text, no `recordedAt`.
   * For readers that parse each event once and drop it (a rebuild): fewer and shorter-lived objects.
   */
  readAllJson?(options?: ReadAllOptions): Promise<StoredEventJson[]>;
  /** Highest global position visible now (0n when empty). */
  headPosition(): Promise<bigint>;
  /**
   * Whether `position` is a token this store handed out: 0n (the start) or the global position
   * of a stored event. Use it before taking a position from outside (a query string, a saved
   * checkpoint of unknown origin).
   */
  hasPosition(position: bigint): Promise<boolean>;
  /**
   * A stable identity of this store's log, created on first use and kept in the store itself.
   * Positions of one store mean nothing in another: whoever saves a position saves this next to it.
   */
  storeId(): Promise<string>;
  /**
   * The byte budget of one append (see AppendTooLargeError), or null for none. Callers that can
   * split their events (dead letters) chunk under it with `chunkByBytes`.
   */
  readonly maxAppendBytes: number | null;
  /** Catch-up subscription: reads from `after`, then follows new events. */
  subscribe(options: SubscribeOptions): Subscription;
  /** The latest snapshot of a stream, or null. */
  readSnapshot(streamName: string): Promise<Snapshot | null>;
  /** Keeps `snapshot` unless the store already holds one at the same or a later revision. */
  writeSnapshot(snapshot: Snapshot): Promise<void>;
  /** Deletes every snapshot (ops, tests); returns how many. */
  deleteSnapshots(): Promise<number>;
  /**
   * Optional. Cold loads of many streams at once: for each stream, its latest snapshot and the first
   * `maxCount` events after it (see `ColdStart`), in a fixed number of round trips whatever the
   * number of streams. Every requested stream is in the answer (no snapshot, no events: empty).
   * The same as `readSnapshot` then `readStream` per stream, batched.
   */
  readColdStarts?(streamNames: string[], maxCount: number): Promise<Map<string, ColdStart>>;
  /**
   * Optional. The stored events with these ids (any stream, any order; unknown ids are left out).
   * Deterministic ids make it the permanent dedupe path for inputs whose ids a bounded state no
   * longer keeps.
   */
  readEventsById?(ids: string[]): Promise<StoredEvent[]>;
  /** Wakes up subscriptions of this process immediately (after a local append). */
  notify?(): void;
  close(): Promise<void>;
}

export class WrongExpectedRevisionError extends Error {
  constructor(
    public readonly streamName: string,
    public readonly expected: ExpectedRevision,
    public readonly actual: number,
  ) {
    super(`stream ${streamName}: expected revision ${String(expected)}, actual ${actual}`);
    this.name = 'WrongExpectedRevisionError';
  }
}

/** An append reused an event id already stored (and it was not an idempotent retry). */
export class DuplicateEventIdError extends Error {
  constructor(public readonly streamName: string, public readonly eventId: string) {
    super(`stream ${streamName}: event id ${eventId} is already stored`);
    this.name = 'DuplicateEventIdError';
  }
}

/**
 * One append (one stream's part of it) is larger than the store's byte budget
 * (`maxAppendBytes`; KurrentDB: MaxAppendSize). Thrown before anything is written; retrying the
 * same append can never succeed.
 */
export class AppendTooLargeError extends Error {
  constructor(
    public readonly streamName: string,
    public readonly eventCount: number,
    public readonly bytes: number,
    public readonly maxAppendBytes: number,
  ) {
    super(
      `stream ${streamName}: an append of ${eventCount} event(s), ${bytes} bytes, exceeds the store's append budget of ${maxAppendBytes} bytes (maxAppendBytes); nothing was written`,
    );
    this.name = 'AppendTooLargeError';
  }
}

/** The store cannot be reached; callers retry later and must not commit offsets. */
export class StoreUnavailableError extends Error {
  constructor(message: string, public override readonly cause?: unknown) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export const EVENT_STORE = Symbol('EVENT_STORE');
