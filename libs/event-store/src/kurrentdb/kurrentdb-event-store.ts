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
 * not index event ids): before each append the adapter reads the stream's ids it has not seen yet
 * (an LRU cache per stream keeps this incremental) and applies the same rule as the other
 * adapters. Limits: an id reused in a DIFFERENT stream is not detected (no global id index in
 * KurrentDB), and with expected 'any' the check races with other writers (use exact revisions).
 * `appendMany` is not offered (callers fall back to one append per stream).
 */
import {
  ANY,
  END,
  ErrorType,
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
import { reportUnhandled, safeCall } from '../internal/polling-subscription';
import { checkSnapshot, normaliseReadAll, normaliseReadStream } from '../internal/read-options';

/** Snapshots of stream X live in stream `snapshot-X` (outside every prefix the app reads). */
const SNAPSHOT_PREFIX = 'snapshot-';

export interface KurrentDbEventStoreOptions {
  /** Connection string, e.g. `kurrentdb://host:2113?tls=false`. Ignored when `client` is given. */
  url?: string;
  /** An existing client (not disposed by `close()`). */
  client?: KurrentDBClient;
  /** Streams whose event ids are cached for the duplicate-id check. Default 1000. */
  idCacheStreams?: number;
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

function serverFilter(streamPrefix: string | null): Filter {
  return streamPrefix ? streamNameFilter({ prefixes: [streamPrefix] }) : excludeSystemEvents();
}

/** Ids of one stream already stored, in revision order (revision = index). */
interface StreamIds {
  revision: number;
  ids: Map<string, number>;
}

export class KurrentDbEventStore implements EventStore {
  readonly client: KurrentDBClient;
  private readonly ownsClient: boolean;
  private readonly idCache = new Map<string, StreamIds>();
  private readonly idCacheLimit: number;
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
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.assertOpen();
    const req = prepareRequest(streamName, events, expected);
    try {
      const known = await this.catchUpIds(streamName);
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

  /** Brings the cached id list of a stream up to date with the server. */
  private async catchUpIds(streamName: string): Promise<StreamIds> {
    let entry = this.idCache.get(streamName);
    if (entry) {
      this.idCache.delete(streamName); // LRU: re-insert as most recent
    } else {
      entry = { revision: -1, ids: new Map() };
    }
    this.idCache.set(streamName, entry);
    while (this.idCache.size > this.idCacheLimit) {
      const oldest = this.idCache.keys().next().value as string;
      this.idCache.delete(oldest);
    }
    for (;;) {
      const page = await this.readStreamRaw(streamName, entry.revision + 1, READ_PAGE);
      for (const e of page) {
        const revision = Number(e.revision);
        if (revision !== entry.revision + 1) continue; // a concurrent catch-up already added it
        entry.ids.set(e.id.toLowerCase(), revision);
        entry.revision = revision;
      }
      if (page.length < READ_PAGE) return entry;
    }
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
    try {
      for await (const resolved of this.client.readStream(streamName, {
        fromRevision: BigInt(fromRevision),
        direction: FORWARDS,
        ...(maxCount === null ? {} : { maxCount }),
      })) {
        if (resolved.event) out.push(resolved.event);
      }
    } catch (err) {
      if (isStreamNotFound(err)) return [];
      throw err;
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
      throw await this.translate(err, streamName);
    }
  }

  async streamRevision(streamName: string): Promise<number> {
    this.assertOpen();
    try {
      for await (const resolved of this.client.readStream(streamName, { fromRevision: END, direction: BACKWARDS, maxCount: 1 })) {
        if (resolved.event) return Number(resolved.event.revision);
      }
      return -1;
    } catch (err) {
      if (isStreamNotFound(err)) return -1;
      throw await this.translate(err, streamName);
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
        for await (const resolved of this.client.readAll({
          fromPosition: fromPosition(from),
          direction: FORWARDS,
          maxCount: READ_PAGE,
          filter: serverFilter(o.streamPrefix),
        })) {
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
        if (seen < READ_PAGE || !progressed) return out;
      }
    } catch (err) {
      throw await this.translate(err);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots: one stream per snapshotted stream (`snapshot-<stream>`), capped at one event by
  // its $maxCount metadata, so the server keeps only the latest.

  async readSnapshot(streamName: string): Promise<Snapshot | null> {
    this.assertOpen();
    try {
      for await (const resolved of this.client.readStream(SNAPSHOT_PREFIX + streamName, { fromRevision: END, direction: BACKWARDS, maxCount: 1 })) {
        const d = resolved.event?.data as { revision?: unknown; schema?: unknown; data?: unknown } | undefined;
        if (d && typeof d.revision === 'number' && typeof d.schema === 'number' && typeof d.data === 'string')
          return { streamName, revision: d.revision, schema: d.schema, data: d.data };
      }
      return null;
    } catch (err) {
      if (isStreamNotFound(err)) return null;
      throw await this.translate(err, streamName);
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
      for await (const resolved of this.client.readAll({
        fromPosition: END,
        direction: BACKWARDS,
        maxCount: 1,
        filter: excludeSystemEvents(),
      })) {
        if (resolved.event) return positionOf(resolved);
      }
      return 0n;
    } catch (err) {
      throw await this.translate(err);
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
    if (isKurrentTransient(err)) {
      return new StoreUnavailableError(`kurrentdb unavailable: ${(err as Error).message}`, err);
    }
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
      const sub = this.client.subscribeToAll({ fromPosition: fromPosition(this.last), filter: serverFilter(this.streamPrefix) });
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
        if (isKurrentTransient(err)) {
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
