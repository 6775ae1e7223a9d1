/**
 * KurrentDB adapter on @kurrent/kurrentdb-client.
 *
 * Mapping to the port:
 *  - revisions are KurrentDB stream revisions (bigint on the wire, number here);
 *    expected 'no_stream' / 'any' / n map to NO_STREAM / ANY / BigInt(n) (`streamState`);
 *  - `globalPosition` is the event's commit position in the transaction log. Every event
 *    appended through the gRPC API is its own committed prepare, so its commit position is
 *    unique and increases in log order (events of one append get consecutive log positions).
 *    Resuming from a checkpoint reads from {commit, prepare} = {p, p} and drops anything <= p;
 *  - event ids are passed through (lower-cased UUIDs), so the server's own idempotency applies;
 *  - system streams and `$` event types are never returned.
 *
 * The port's idempotency and duplicate-id rules are stricter than the server's (the server does
 * not index event ids). Bounded id tracking: before each append the adapter reads only the
 * stream's tail (as many events as the append holds, backwards, which also gives the tip) and
 * keeps a bounded window of the latest ids per stream (`idWindow`, default 256) for at most
 * `idCacheStreams` streams; it never reads a stream's history. An idempotent retry (the ids are
 * the run that ends the stream) is always recognised; an id reused further back than the window
 * is not detected here: callers rely on deterministic ids, exact expected revisions and their own
 * bounded state (snapshots + the corrections window). An id reused in a DIFFERENT stream is not
 * detected either (no global id index), and with expected 'any' the check races with other
 * writers. `appendMany` and `readEventsById` are not offered.
 *
 * Positions are sparse byte offsets (never dense): the app treats them as opaque tokens.
 * Appends over `maxAppendBytes` (default 960 KiB, under the server's MaxAppendSize of 1 MiB) are
 * refused before anything is sent (AppendTooLargeError). Read errors are transient
 * (StoreUnavailableError: deadlines, restarts, leader changes, unknown gRPC failures) unless the
 * stream is not found or access is denied.
 */
import { randomUUID } from 'node:crypto';
import {
  ANY,
  END,
  ErrorType,
  eventTypeFilter,
  FORWARDS,
  BACKWARDS,
  KurrentDBClient,
  NO_STREAM,
  START,
  WrongExpectedVersionError,
  excludeSystemEvents,
  jsonEvent,
  streamNameFilter,
} from '@kurrent/kurrentdb-client';
import type { AllStreamResolvedEvent, Filter, ReadPosition, RecordedEvent, ResolvedEvent, StreamState } from '@kurrent/kurrentdb-client';
import {
  AppendResult,
  AppendTooLargeError,
  DuplicateEventIdError,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  StoreUnavailableError,
  StoredEvent,
  Snapshot,
  SubscribeOptions,
  Subscription,
  WrongExpectedRevisionError,
} from '../port';
import { ExistingEvent, decide, prepareRequest } from '../internal/append-plan';
import { KURRENTDB_DEFAULT_MAX_APPEND_BYTES, normaliseBudget } from '../internal/append-budget';
import { reportUnhandled, safeCall } from '../internal/polling-subscription';
import { checkSnapshot, normaliseReadAll, normaliseReadStream } from '../internal/read-options';

/** Snapshots of stream X live in stream `snapshot-X` (outside every prefix the app reads). */
const SNAPSHOT_PREFIX = 'snapshot-';
/** One event, written once: the identity of this store's log (see `storeId`). */
const IDENTITY_STREAM = 'metering-store-identity';

export interface KurrentDbEventStoreOptions {
  /** Connection string, e.g. `kurrentdb://host:2113?tls=false`. Ignored when `client` is given. */
  url?: string;
  /** An existing client (not disposed by `close()`). */
  client?: KurrentDBClient;
  /** Streams whose recent event ids are kept for the duplicate-id check. Default 1000. */
  idCacheStreams?: number;
  /** Latest ids kept per stream (bounded window). Default 256. */
  idWindow?: number;
  /** Byte budget of one append. Default 960 KiB (the server's MaxAppendSize is 1 MiB by default). */
  maxAppendBytes?: number;
}

const READ_PAGE = 512;
const MAX_BACKOFF_MS = 5_000;
/** gRPC status codes meaning "try again later". */
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;

const TRANSIENT_TYPES = new Set<string>([
  ErrorType.UNAVAILABLE,
  ErrorType.DEADLINE_EXCEEDED,
  ErrorType.TIMEOUT,
  ErrorType.NOT_LEADER,
]);

export function isKurrentTransient(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const { type, code } = err as { type?: unknown; code?: unknown };
  if (typeof type === 'string' && TRANSIENT_TYPES.has(type)) return true;
  return code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED || code === GRPC_RESOURCE_EXHAUSTED;
}

/** Errors a READ can never outgrow by waiting: everything else (UnknownError included) is transient. */
const PERMANENT_READ_TYPES = new Set<string>([
  ErrorType.STREAM_NOT_FOUND,
  ErrorType.NOT_FOUND,
  ErrorType.ACCESS_DENIED,
  ErrorType.STREAM_DELETED,
  ErrorType.STREAM_TOMBSTONED,
  ErrorType.INVALID_ARGUMENT,
  ErrorType.UNSUPPORTED,
]);
const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/**
 * Read errors: transient unless not-found, access-denied (or another error waiting cannot fix).
 * Deadlines and server restarts arrive from the client as UnknownError: they are transient.
 */
export function isKurrentReadTransient(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  if (err instanceof TypeError || err instanceof RangeError) return false; // our own bug, not the server
  const { type, code } = err as { type?: unknown; code?: unknown };
  if (typeof type === 'string' && PERMANENT_READ_TYPES.has(type)) return false;
  if (code === GRPC_NOT_FOUND || code === GRPC_PERMISSION_DENIED || code === GRPC_UNAUTHENTICATED) return false;
  return true;
}

export function isAccessDenied(err: unknown): boolean {
  const { type, code } = (err ?? {}) as { type?: unknown; code?: unknown };
  return type === ErrorType.ACCESS_DENIED || code === GRPC_PERMISSION_DENIED || code === GRPC_UNAUTHENTICATED;
}

function isStreamNotFound(err: unknown): boolean {
  return (err as { type?: unknown } | null)?.type === ErrorType.STREAM_NOT_FOUND;
}

function isSystem(streamName: string, type: string): boolean {
  return streamName.startsWith('$') || type.startsWith('$');
}

function asObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)
    ? (value as Record<string, unknown>)
    : {};
}

function toStored(e: RecordedEvent, position: bigint): StoredEvent {
  return {
    id: e.id.toLowerCase(),
    streamName: e.streamId,
    type: e.type,
    data: asObject(e.data),
    metadata: asObject(e.metadata),
    revision: Number(e.revision),
    globalPosition: position,
    recordedAt: e.created.toISOString(),
  };
}

function positionOf(resolved: ResolvedEvent | AllStreamResolvedEvent): bigint {
  const commit = resolved.event?.position?.commit ?? resolved.commitPosition;
  return commit ?? 0n;
}

function fromPosition(after: bigint): ReadPosition {
  return after > 0n ? { commit: after, prepare: after } : START;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The server-side filter: by event type when types are asked for (the relay: the server skips
 * every other event), else by stream prefix, else no system events. The other criterion, if any,
 * is applied on the client.
 */
function serverFilter(streamPrefix: string | null, types: string[] | null): Filter {
  if (types) return eventTypeFilter({ regex: `^(${types.map(escapeRegex).join('|')})$` });
  return streamPrefix ? streamNameFilter({ prefixes: [streamPrefix] }) : excludeSystemEvents();
}

/** Closes a read early (server-side resources), whatever the iterator offers. */
async function closeRead(it: AsyncIterator<unknown>): Promise<void> {
  const r = it as { return?: () => Promise<unknown>; cancel?: () => Promise<unknown> };
  try {
    if (typeof r.cancel === 'function') await r.cancel();
    else if (typeof r.return === 'function') await r.return();
  } catch {
    // already closed
  }
}

/** The latest ids of one stream: a bounded window ending at `revision`. */
interface StreamIds {
  revision: number;
  ids: Map<string, number>;
}

export class KurrentDbEventStore implements EventStore {
  readonly client: KurrentDBClient;
  private readonly ownsClient: boolean;
  private readonly idCache = new Map<string, StreamIds>();
  private readonly idCacheLimit: number;
  private readonly idWindow: number;
  readonly maxAppendBytes: number | null;
  private identity: string | null = null;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;

  constructor(options: KurrentDbEventStoreOptions) {
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      if (!options.url) throw new TypeError('KurrentDbEventStore: url or client is required');
      this.client = KurrentDBClient.connectionString(options.url);
      this.ownsClient = true;
    }
    this.idCacheLimit = options.idCacheStreams ?? 1000;
    this.idWindow = options.idWindow ?? 256;
    this.maxAppendBytes = normaliseBudget(options.maxAppendBytes, KURRENTDB_DEFAULT_MAX_APPEND_BYTES);
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.assertOpen();
    const req = prepareRequest(streamName, events, expected, this.maxAppendBytes);
    try {
      const known = await this.recentIds(streamName, Math.max(1, req.events.length));
      const existing = new Map<string, ExistingEvent>();
      for (const e of req.events) {
        const revision = known.ids.get(e.id);
        if (revision !== undefined) existing.set(e.id, { id: e.id, streamName, revision, globalPosition: -1n });
      }
      const d = decide(req, { revision: known.revision, lastGlobalPosition: -1n }, existing);
      if (d.kind === 'already' || d.kind === 'empty') {
        const pos = known.revision >= 0 ? await this.positionAt(streamName, known.revision) : 0n;
        return { ...d.result, lastGlobalPosition: pos };
      }
      const result = await this.client.appendToStream(
        streamName,
        req.events.map((e) =>
          jsonEvent({ id: e.id, type: e.type, data: JSON.parse(e.data) as Record<string, unknown>, metadata: JSON.parse(e.metadata) as Record<string, unknown> }),
        ),
        { streamState: toStreamState(expected) },
      );
      if (result.success === false) {
        // A client built with throwOnAppendFailure=false reports the conflict instead of throwing.
        this.idCache.delete(streamName);
        throw new WrongExpectedRevisionError(streamName, expected, await this.streamRevision(streamName));
      }
      const next = Number(result.nextExpectedRevision);
      if (known.revision === d.firstRevision - 1 && next === d.result.nextExpectedRevision) {
        req.events.forEach((e, i) => known.ids.set(e.id, d.firstRevision + i));
        known.revision = next;
        this.trim(known);
      }
      this.notify();
      return {
        nextExpectedRevision: next,
        lastGlobalPosition: result.position?.commit ?? (await this.positionAt(streamName, next)),
        alreadyAppended: false,
      };
    } catch (err) {
      throw await this.translate(err, streamName, expected);
    }
  }

  /**
   * The stream's tip and its latest ids, without reading its history: the last `tail` events
   * (backwards, from the end) are always read, which finds an idempotent retry and the tip; ids
   * of earlier appends stay in a bounded window per stream (LRU over streams).
   */
  private async recentIds(streamName: string, tail: number): Promise<StreamIds> {
    let entry = this.idCache.get(streamName);
    if (entry) this.idCache.delete(streamName); // LRU: re-insert as most recent
    this.idCache.set(streamName, (entry ??= { revision: -1, ids: new Map() }));
    while (this.idCache.size > this.idCacheLimit) this.idCache.delete(this.idCache.keys().next().value as string);
    const last = await this.readTail(streamName, tail);
    const tip = last.length ? Number(last[0].revision) : -1;
    if (tip < entry.revision) {
      entry.revision = -1; // the stream was deleted and recreated: forget what we knew
      entry.ids.clear();
    }
    if (tip > entry.revision) {
      const gap = tip - entry.revision;
      // A gap larger than the tail read: what is between is only read up to the window.
      if (gap > last.length && entry.revision >= 0 && gap <= this.idWindow) {
        for (const e of await this.readStreamRaw(streamName, entry.revision + 1, gap - last.length)) entry.ids.set(e.id.toLowerCase(), Number(e.revision));
      } else if (gap > last.length) {
        entry.ids.clear();
      }
      for (const e of [...last].reverse()) entry.ids.set(e.id.toLowerCase(), Number(e.revision));
      entry.revision = tip;
      this.trim(entry);
    }
    return entry;
  }

  private trim(entry: StreamIds): void {
    const floor = entry.revision - this.idWindow;
    for (const [id, revision] of entry.ids) {
      if (revision > floor) break; // insertion order = revision order
      entry.ids.delete(id);
    }
  }

  /** The last `n` events of a stream, newest first. */
  private async readTail(streamName: string, n: number): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    const it = this.client.readStream(streamName, { fromRevision: END, direction: BACKWARDS, maxCount: n });
    try {
      for await (const resolved of it) if (resolved.event) out.push(resolved.event);
    } catch (err) {
      if (isStreamNotFound(err)) return [];
      throw err;
    } finally {
      await closeRead(it);
    }
    return out;
  }

  private async positionAt(streamName: string, revision: number): Promise<bigint> {
    const [e] = await this.readStreamRaw(streamName, revision, 1);
    return e?.position?.commit ?? 0n;
  }

  // ------------------------------------------------------------------------------------------
  // Reads

  private async readStreamRaw(streamName: string, fromRevision: number, maxCount: number | null): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    if (maxCount === 0) return out;
    const it = this.client.readStream(streamName, {
      fromRevision: BigInt(fromRevision),
      direction: FORWARDS,
      ...(maxCount === null ? {} : { maxCount }),
    });
    try {
      for await (const resolved of it) {
        if (resolved.event) out.push(resolved.event);
      }
    } catch (err) {
      if (isStreamNotFound(err)) return [];
      throw err;
    } finally {
      await closeRead(it);
    }
    return out;
  }

  async readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const { fromRevision, maxCount } = normaliseReadStream(options);
    try {
      const raw = await this.readStreamRaw(streamName, fromRevision, maxCount);
      return raw.map((e) => toStored(e, e.position?.commit ?? 0n));
    } catch (err) {
      throw this.translateRead(err, streamName);
    }
  }

  async streamRevision(streamName: string): Promise<number> {
    this.assertOpen();
    try {
      const [last] = await this.readTail(streamName, 1);
      return last ? Number(last.revision) : -1;
    } catch (err) {
      throw this.translateRead(err, streamName);
    }
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const o = normaliseReadAll(options);
    const out: StoredEvent[] = [];
    if (o.maxCount === 0) return out;
    let from = o.after;
    try {
      for (;;) {
        let seen = 0;
        let progressed = false;
        // Ask for no more than is still wanted (+1: the read position is inclusive).
        const want = o.maxCount === null ? READ_PAGE : Math.min(READ_PAGE, o.maxCount - out.length + 1);
        const it = this.client.readAll({
          fromPosition: fromPosition(from),
          direction: FORWARDS,
          maxCount: want,
          filter: serverFilter(o.streamPrefix, o.types),
        });
        try {
        for await (const resolved of it) {
          seen++;
          const e = resolved.event;
          if (!e) continue;
          const pos = positionOf(resolved);
          if (pos <= from) continue; // the read position is inclusive
          from = pos;
          progressed = true;
          if (isSystem(e.streamId, e.type)) continue;
          if (o.streamPrefix && !e.streamId.startsWith(o.streamPrefix)) continue;
          if (o.types && !o.types.includes(e.type)) continue;
          out.push(toStored(e, pos));
          if (o.maxCount !== null && out.length >= o.maxCount) return out;
        }
        } finally {
          await closeRead(it);
        }
        if (seen < want || !progressed) return out;
      }
    } catch (err) {
      throw this.translateRead(err);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots: one stream per snapshotted stream (`snapshot-<stream>`), capped at one event by
  // its $maxCount metadata, so the server keeps only the latest.

  async readSnapshot(streamName: string): Promise<Snapshot | null> {
    this.assertOpen();
    try {
      const [last] = await this.readTail(SNAPSHOT_PREFIX + streamName, 1);
      const d = last?.data as { revision?: unknown; schema?: unknown; data?: unknown } | undefined;
      if (d && typeof d.revision === 'number' && typeof d.schema === 'number' && typeof d.data === 'string')
        return { streamName, revision: d.revision, schema: d.schema, data: d.data };
      return null;
    } catch (err) {
      throw this.translateRead(err, streamName);
    }
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    checkSnapshot(snapshot);
    const current = await this.readSnapshot(snapshot.streamName);
    if (current && current.revision >= snapshot.revision) return;
    const stream = SNAPSHOT_PREFIX + snapshot.streamName;
    try {
      if (!current) await this.client.setStreamMetadata(stream, { maxCount: 1 });
      await this.client.appendToStream(
        stream,
        jsonEvent({ type: 'Snapshot', data: { revision: snapshot.revision, schema: snapshot.schema, data: snapshot.data } }),
        { streamState: ANY },
      );
    } catch (err) {
      throw await this.translate(err, stream);
    }
  }

  async deleteSnapshots(): Promise<number> {
    this.assertOpen();
    const streams = new Set<string>();
    try {
      for await (const resolved of this.client.readAll({ fromPosition: START, direction: FORWARDS, filter: streamNameFilter({ prefixes: [SNAPSHOT_PREFIX] }) })) {
        if (resolved.event && resolved.event.streamId.startsWith(SNAPSHOT_PREFIX)) streams.add(resolved.event.streamId);
      }
      for (const stream of streams) await this.client.deleteStream(stream);
    } catch (err) {
      throw await this.translate(err);
    }
    return streams.size;
  }

  async headPosition(): Promise<bigint> {
    this.assertOpen();
    try {
      const it = this.client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 1, filter: excludeSystemEvents() });
      try {
        for await (const resolved of it) if (resolved.event) return positionOf(resolved);
      } finally {
        await closeRead(it);
      }
      return 0n;
    } catch (err) {
      throw this.translateRead(err);
    }
  }

  /** 0n, or the commit position of a stored (non-system) event; an offset inside a record is not one. */
  async hasPosition(position: bigint): Promise<boolean> {
    this.assertOpen();
    if (typeof position !== 'bigint' || position < 0n) return false;
    if (position === 0n) return true;
    try {
      const it = this.client.readAll({ fromPosition: { commit: position, prepare: position }, direction: FORWARDS, maxCount: 1, filter: excludeSystemEvents() });
      try {
        for await (const resolved of it) return resolved.event !== undefined && positionOf(resolved) === position;
      } finally {
        await closeRead(it);
      }
      return false;
    } catch (err) {
      // InvalidPosition (an offset inside a record, or past the end) arrives as an unknown error.
      if (/invalid ?position|position.*(invalid|beyond)/i.test(String((err as Error)?.message))) return false;
      throw this.translateRead(err);
    }
  }

  /**
   * The identity of this server's log: one event in `metering-store-identity`, written once with
   * NO_STREAM (a racing writer loses and reads the winner's). Needs read and write on that stream.
   */
  async storeId(): Promise<string> {
    this.assertOpen();
    if (this.identity) return this.identity;
    const read = async (): Promise<string | null> => {
      const [e] = await this.readTail(IDENTITY_STREAM, 1);
      const id = (e?.data as { storeId?: unknown } | undefined)?.storeId;
      return typeof id === 'string' ? id : null;
    };
    try {
      let id = await read();
      if (!id) {
        try {
          await this.client.appendToStream(IDENTITY_STREAM, jsonEvent({ type: 'StoreIdentity', data: { storeId: `kurrentdb:${randomUUID()}` } }), { streamState: NO_STREAM });
        } catch (err) {
          if (!(err instanceof WrongExpectedVersionError)) throw err;
        }
        id = await read();
      }
      if (!id) throw new Error(`KurrentDB stream ${IDENTITY_STREAM} holds no store identity`);
      this.identity = id;
      return id;
    } catch (err) {
      throw this.translateRead(err, IDENTITY_STREAM);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Subscriptions: a catch-up subscription to $all, filtered server-side by stream prefix.

  subscribe(options: SubscribeOptions): Subscription {
    this.assertOpen();
    const o = normaliseReadAll({ after: options.after, streamPrefix: options.streamPrefix, types: options.types });
    if (typeof options.handler !== 'function') throw new TypeError('subscribe: handler must be a function');
    const sub = new KurrentCatchUpSubscription(this.client, options, o.after, o.streamPrefix, o.types);
    const tracked: Subscription = {
      stop: async () => {
        this.subscriptions.delete(tracked);
        await sub.stop();
      },
    };
    this.subscriptions.add(tracked);
    return tracked;
  }

  /** Subscriptions are pushed by the server: nothing to wake. */
  notify(): void {
    // no-op
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (this.ownsClient) await this.client.dispose();
  }

  // ------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new Error('event store is closed');
  }

  private async translate(err: unknown, streamName?: string, expected?: ExpectedRevision): Promise<unknown> {
    if (
      err instanceof WrongExpectedRevisionError ||
      err instanceof DuplicateEventIdError ||
      err instanceof StoreUnavailableError ||
      err instanceof TypeError
    ) {
      return err;
    }
    if (err instanceof WrongExpectedVersionError || (err as { type?: unknown } | null)?.type === ErrorType.WRONG_EXPECTED_VERSION) {
      const w = err as WrongExpectedVersionError;
      const stream = w.streamName || streamName || 'unknown';
      this.idCache.delete(stream);
      let actual: number;
      if (w.actualState === NO_STREAM) actual = -1;
      else if (typeof w.actualState === 'bigint') actual = Number(w.actualState);
      else actual = await this.streamRevision(stream).catch(() => -1);
      return new WrongExpectedRevisionError(stream, expected ?? 'any', actual);
    }
    const type = (err as { type?: unknown } | null)?.type;
    if (type === ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED || type === ErrorType.APPEND_RECORD_SIZE_EXCEEDED) {
      // The server's MaxAppendSize is below our budget: configure maxAppendBytes lower.
      return new AppendTooLargeError(streamName ?? 'unknown', 0, -1, this.maxAppendBytes ?? -1);
    }
    if (isKurrentReadTransient(err)) {
      return new StoreUnavailableError(`kurrentdb unavailable: ${(err as Error).message}`, err);
    }
    return err;
  }

  /** Read errors: transient (StoreUnavailableError) unless not-found, access-denied or alike. */
  private translateRead(err: unknown, streamName?: string): unknown {
    if (err instanceof StoreUnavailableError || err instanceof TypeError) return err;
    if (isAccessDenied(err)) {
      const what = streamName ? `stream ${streamName}` : '$all';
      const e = new Error(`kurrentdb: access denied reading ${what}: grant the service's user read on it (see README, KurrentDB user and ACLs): ${(err as Error).message}`);
      (e as Error & { cause?: unknown }).cause = err;
      return e;
    }
    if (isKurrentReadTransient(err)) return new StoreUnavailableError(`kurrentdb unavailable: ${(err as Error).message}`, err);
    return err;
  }
}

function toStreamState(expected: ExpectedRevision): StreamState {
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'any') return ANY;
  return BigInt(expected);
}

/**
 * Catch-up subscription to $all from a checkpoint; resubscribes from the last delivered
 * position after a transient failure. Events are handed to the handler one page per event
 * (the server pushes them one at a time); delivery is sequential and never repeats a position.
 */
class KurrentCatchUpSubscription implements Subscription {
  private stopped = false;
  private current: { unsubscribe(): Promise<void> } | null = null;
  private readonly done: Promise<void>;
  private wakeSleep: (() => void) | null = null;

  constructor(
    private readonly client: KurrentDBClient,
    private readonly options: SubscribeOptions,
    private last: bigint,
    private readonly streamPrefix: string | null,
    private readonly types: string[] | null,
  ) {
    this.done = this.run();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    await Promise.resolve();
    const { handler, onError = reportUnhandled } = this.options;
    let failures = 0;
    while (!this.stopped) {
      const sub = this.client.subscribeToAll({ fromPosition: fromPosition(this.last), filter: serverFilter(this.streamPrefix, this.types) });
      this.current = sub;
      try {
        for await (const resolved of sub) {
          if (this.stopped) break;
          failures = 0;
          const e = resolved.event;
          if (!e) continue;
          const pos = positionOf(resolved);
          if (pos <= this.last) continue;
          if (
            isSystem(e.streamId, e.type) ||
            (this.streamPrefix && !e.streamId.startsWith(this.streamPrefix)) ||
            (this.types && !this.types.includes(e.type))
          ) {
            this.last = pos;
            continue;
          }
          try {
            await handler([toStored(e, pos)]);
          } catch (err) {
            this.stopped = true;
            safeCall(onError, err);
            break;
          }
          this.last = pos;
        }
        if (!this.stopped) {
          // The server ended the subscription: resubscribe from the checkpoint.
          await this.sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(++failures, 10)));
        }
      } catch (err) {
        if (this.stopped) break;
        if (isKurrentReadTransient(err)) {
          await this.sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(++failures, 10)));
          continue;
        }
        this.stopped = true;
        safeCall(onError, err);
      } finally {
        this.current = null;
        await sub.unsubscribe().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeSleep?.();
    await this.current?.unsubscribe().catch(() => undefined);
    await this.done;
  }
}
