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
 *
 * This file is the class; its parts live beside it: `kurrentdb-errors.ts` (error classification
 * and translation), `kurrentdb-mapping.ts` (records, positions, filters, expected revisions),
 * `kurrentdb-reads.ts` (stream, tail and $all reads), `kurrentdb-id-tracking.ts` (the bounded id
 * window) and `kurrentdb-subscription.ts` (the catch-up subscription).
 */
import { randomUUID } from 'node:crypto';
import { ANY, FORWARDS, KurrentDBClient, NO_STREAM, START, WrongExpectedVersionError, jsonEvent, streamNameFilter } from '@kurrent/kurrentdb-client';
import {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  StoredEvent,
  StoredEventJson,
  Snapshot,
  SubscribeOptions,
  Subscription,
  WrongExpectedRevisionError,
} from '../port';
import { ExistingEvent, decide, prepareRequest } from '../internal/append-plan';
import { KURRENTDB_DEFAULT_MAX_APPEND_BYTES, normaliseBudget } from '../internal/append-budget';
import { checkSnapshot, normaliseReadAll, normaliseReadStream } from '../internal/read-options';
import { translateReadError, translateWriteError } from './kurrentdb-errors';
import { toStoredJson } from '../internal/stored-json';
import { StreamIdTracker } from './kurrentdb-id-tracking';
import { toStored, toStreamState } from './kurrentdb-mapping';
import { isEventPosition, positionAt, readAllPaged, readHeadPosition, readStreamRaw, readTail } from './kurrentdb-reads';
import { KurrentCatchUpSubscription } from './kurrentdb-subscription';

export { isAccessDenied, isKurrentReadTransient, isKurrentTransient } from './kurrentdb-errors';

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

export class KurrentDbEventStore implements EventStore {
  readonly client: KurrentDBClient;
  private readonly ownsClient: boolean;
  private readonly ids: StreamIdTracker;
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
    this.ids = new StreamIdTracker(this.client, options.idCacheStreams ?? 1000, options.idWindow ?? 256);
    this.maxAppendBytes = normaliseBudget(options.maxAppendBytes, KURRENTDB_DEFAULT_MAX_APPEND_BYTES);
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.assertOpen();
    const req = prepareRequest(streamName, events, expected, this.maxAppendBytes);
    try {
      const known = await this.ids.recentIds(streamName, Math.max(1, req.events.length));
      const existing = new Map<string, ExistingEvent>();
      for (const e of req.events) {
        const revision = known.ids.get(e.id);
        if (revision !== undefined) existing.set(e.id, { id: e.id, streamName, revision, globalPosition: -1n });
      }
      const d = decide(req, { revision: known.revision, lastGlobalPosition: -1n }, existing);
      if (d.kind === 'already' || d.kind === 'empty') {
        const pos = known.revision >= 0 ? await positionAt(this.client, streamName, known.revision) : 0n;
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
        this.ids.forget(streamName);
        throw new WrongExpectedRevisionError(streamName, expected, await this.streamRevision(streamName));
      }
      const next = Number(result.nextExpectedRevision);
      if (known.revision === d.firstRevision - 1 && next === d.result.nextExpectedRevision) {
        req.events.forEach((e, i) => known.ids.set(e.id, d.firstRevision + i));
        known.revision = next;
        this.ids.trim(known);
      }
      this.notify();
      return {
        nextExpectedRevision: next,
        lastGlobalPosition: result.position?.commit ?? (await positionAt(this.client, streamName, next)),
        alreadyAppended: false,
      };
    } catch (err) {
      throw await this.translate(err, streamName, expected);
    }
  }

  async readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const { fromRevision, maxCount } = normaliseReadStream(options);
    try {
      const raw = await readStreamRaw(this.client, streamName, fromRevision, maxCount);
      return raw.map((e) => toStored(e, e.position?.commit ?? 0n));
    } catch (err) {
      throw this.translateRead(err, streamName);
    }
  }

  async streamRevision(streamName: string): Promise<number> {
    this.assertOpen();
    try {
      const [last] = await readTail(this.client, streamName, 1);
      return last ? Number(last.revision) : -1;
    } catch (err) {
      throw this.translateRead(err, streamName);
    }
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const o = normaliseReadAll(options);
    try {
      return await readAllPaged(this.client, o);
    } catch (err) {
      throw this.translateRead(err);
    }
  }

  /** readAll's events with data and metadata serialised back to JSON (the client hands them parsed). */
  async readAllJson(options?: ReadAllOptions): Promise<StoredEventJson[]> {
    return (await this.readAll(options)).map(toStoredJson);
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots: one stream per snapshotted stream (`snapshot-<stream>`), capped at one event by
  // its $maxCount metadata, so the server keeps only the latest.

  async readSnapshot(streamName: string): Promise<Snapshot | null> {
    this.assertOpen();
    try {
      const [last] = await readTail(this.client, SNAPSHOT_PREFIX + streamName, 1);
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
      return await readHeadPosition(this.client);
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
      return await isEventPosition(this.client, position);
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
      const [e] = await readTail(this.client, IDENTITY_STREAM, 1);
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

  private translate(err: unknown, streamName?: string, expected?: ExpectedRevision): Promise<unknown> {
    return translateWriteError(
      { forget: (s) => this.ids.forget(s), streamRevision: (s) => this.streamRevision(s), maxAppendBytes: this.maxAppendBytes },
      err,
      streamName,
      expected,
    );
  }

  /** Read errors: transient (StoreUnavailableError) unless not-found, access-denied or alike. */
  private translateRead(err: unknown, streamName?: string): unknown {
    return translateReadError(err, streamName);
  }
}
