/**
 * PostgreSQL event store on `pg`.
 *
 * ## The visibility gap, and why appends take positions from a locked counter row
 *
 * With a plain sequence (bigserial) a transaction may take global position 10, another one 11,
 * and the second commit first. A reader that reads `global_position > checkpoint` sees 11, moves
 * its checkpoint to 11 and never sees 10 when it commits later: the event is lost for every
 * projection and relay. Two sound fixes exist:
 *
 *  1. Transaction ids (Marten, Emmett, Eventuous): store `pg_current_xact_id()` with each row
 *     and read only rows whose xid is below `pg_snapshot_xmin(pg_current_snapshot())`, in
 *     (xid, position) order. Writers run in parallel, but the order readers see is xid order,
 *     not commit order, so the checkpoint has to be the pair (xid, position); the port's single
 *     bigint `globalPosition` "in commit order" cannot express it without encoding the xid into
 *     the position, and xids restart after a dump/restore or a logical-replication move to a
 *     new cluster, which would send every checkpoint backwards. Any long write transaction in
 *     the database (a migration, a bulk read-model rebuild) also stalls every reader.
 *  2. Serialised allocation (chosen): the append takes its positions from a single-row counter
 *     (`UPDATE global_position SET value = value + n RETURNING ...`) in the same statement that
 *     inserts the events. The row lock is held until that transaction ends, so the next appender
 *     can only allocate after the previous one has committed (or rolled back, which also gives
 *     its numbers back: no holes). PostgreSQL marks a transaction visible before it releases its
 *     locks, so commit order == position order, and a snapshot that sees position N sees every
 *     position below N. `readAll` is then a plain `global_position > $after` scan, positions are
 *     dense and survive dump/restore, and the port's promise holds literally.
 *
 * The cost is that appends are serialised from the allocation to the commit. The allocation is
 * the last step: the plan (expected revision and event-id checks) is a separate query before
 * it, and the allocation, the insert of every event of the batch and the commit form ONE
 * autocommit statement, so the lock is held for one statement plus the commit flush.
 * Rough cost, measured on the shared 2-core dev box (PostgreSQL 15, fsync and synchronous_commit
 * on, plan query + insert per append, distinct streams, noisy neighbours so +-20 %):
 *    writers  events/append   plain sequence        counter (this store)
 *       1          1            ~1 000 appends/s      ~ 900 appends/s   (-10 %)
 *       8          1            ~1 750 appends/s      ~1 050 appends/s  (-40 %)
 *      16          1            ~2 400 appends/s      ~1 100 appends/s  (-55 %)
 *       8        100            ~62 000 events/s      ~46 000 events/s  (-27 %)
 * i.e. the counter caps single-event appends near 1/(commit latency) whatever the number of
 * writers, while `appendMany` (one allocation per batch) keeps tens of thousands of events/s.
 * Hence the group commit (issue 14): concurrent `append` calls of this process (the same turn of
 * the event loop, or while the previous group is being written) share one plan query and one
 * allocation + insert statement, i.e. one commit and one hold of the counter lock, like the SQLite
 * adapter's group commit; each request keeps its own checks and fails alone. Groups are written
 * one after the other (at most MAX_GROUP_REQUESTS requests / MAX_GROUP_BYTES each), so positions
 * follow call order inside a process. Writers in other processes still serialise on the counter.
 * If that ever becomes the limit, switch to option 1 with an (xid, position) checkpoint in the
 * port.
 *
 * `appendManyInTransaction(client, ...)` runs inside a caller's transaction (read models that
 * must commit with the events): the counter lock is then held until the caller commits, so keep
 * those transactions short.
 */
import { Pool, PoolConfig } from 'pg';
import type { ClientBase, QueryResult, QueryResultRow } from 'pg';
import {
  AppendRequest,
  AppendResult,
  ColdStart,
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
import { ExistingEvent, PlanDecision, PreparedRequest, StreamTip, decide, prepareBatch, prepareRequest } from '../internal/append-plan';
import { normaliseBudget, preparedEventBytes } from '../internal/append-budget';
import { Wakers, startTrackedPolling } from '../internal/polling-subscription';
import { checkSnapshot, normaliseReadAll, normaliseReadStream } from '../internal/read-options';
import { MIGRATIONS, applyMigrations } from './migrations';

export interface PostgresEventStoreOptions {
  /** Connection string; ignored when `pool` is given. */
  url?: string;
  /** An existing pool (not closed by `close()`). */
  pool?: Pool;
  /** Extra settings for the pool this store creates from `url`. */
  poolConfig?: PoolConfig;
  /** Schema holding the tables. Default `metering`. */
  schema?: string;
  /** Byte budget of one append (AppendTooLargeError beyond it). Default: none. */
  maxAppendBytes?: number;
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A schema name checked and quoted, and a pool: the caller's (shared, not owned) or a new one from
 * the URL. Shared by the event store and the read models that live next to it.
 */
export function pgConnection(
  options: { schema?: string; url?: string; pool?: Pool; poolConfig?: PoolConfig },
  who: string,
): { schema: string; quoted: string; pool: Pool; ownsPool: boolean } {
  const schema = options.schema ?? 'metering';
  if (!SCHEMA_RE.test(schema)) throw new TypeError(`schema "${schema}" must be a lower-case SQL identifier`);
  if (options.pool) return { schema, quoted: `"${schema}"`, pool: options.pool, ownsPool: false };
  if (!options.url) throw new TypeError(`${who}: url or pool is required`);
  const pool = new Pool({ connectionString: options.url, connectionTimeoutMillis: 10_000, ...options.poolConfig });
  // An idle client losing its connection must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  return { schema, quoted: `"${schema}"`, pool, ownsPool: true };
}
/** Attempts for an append that lost a race on a unique key (re-planned each time). */
const MAX_APPEND_ATTEMPTS = 8;
/** Caps of one group commit (requests, and bytes as the append budget counts them). */
const MAX_GROUP_REQUESTS = 500;
const MAX_GROUP_BYTES = 8 * 1024 * 1024;

/** One request's outcome in a group: its result, or the error of its own check. */
type Outcome = { result: AppendResult } | { error: unknown };

interface PendingAppend {
  req: PreparedRequest;
  bytes: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** appendMany semantics: every outcome is a result (appendOnce threw otherwise). */
function allOrNothing(outcomes: Outcome[]): AppendResult[] {
  return outcomes.map((o) => {
    if ('error' in o) throw o.error;
    return o.result;
  });
}

const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/** admin/crash shutdown, cannot connect now, too many connections, out of memory/disk. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53100', '53200', '58030']);
const RETRY_SQLSTATES = new Set(['40001', '40P01']);

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for failures to reach the server (not for SQL errors). */
export function isConnectionError(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const code = errCode(err);
  if (code !== undefined) {
    if (CONNECTION_ERRNOS.has(code)) return true;
    if (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code)) return true;
  }
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0 && inner.every(isConnectionError)) return true;
  const message = (err as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down)/i.test(
      message,
    )
  );
}

function unavailable(err: unknown): StoreUnavailableError {
  const m = err instanceof Error && err.message ? err.message : String(errCode(err) ?? err);
  return new StoreUnavailableError(`postgres unavailable: ${m}`, err);
}

interface EventRow {
  global_position: string;
  stream_name: string;
  revision: string;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recorded_at: Date;
}

function toStored(r: EventRow): StoredEvent {
  return {
    id: r.event_id,
    streamName: r.stream_name,
    type: r.type,
    data: r.data,
    metadata: r.metadata,
    revision: Number(r.revision),
    globalPosition: BigInt(r.global_position),
    recordedAt: r.recorded_at.toISOString(),
  };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const COLUMNS = 'global_position, stream_name, revision, event_id, type, data, metadata, recorded_at';

export class PostgresEventStore implements EventStore {
  /** The pool, shared with read models that want their own transactions. */
  readonly pool: Pool;
  readonly schema: string;
  private readonly ownsPool: boolean;
  private readonly q: string;
  private readonly sql: ReturnType<typeof buildSql>;
  private readonly wakers = new Wakers();
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  readonly maxAppendBytes: number | null;
  /** Group commit: appends waiting for the next group, the group being written. */
  private pending: PendingAppend[] = [];
  private groupScheduled = false;
  private writing: Promise<void> | null = null;

  constructor(options: PostgresEventStoreOptions) {
    this.maxAppendBytes = normaliseBudget(options.maxAppendBytes);
    const c = pgConnection(options, 'PostgresEventStore');
    [this.schema, this.q, this.pool, this.ownsPool] = [c.schema, c.quoted, c.pool, c.ownsPool];
    this.sql = buildSql(this.q);
  }

  /** Creates the schema and applies pending migrations; safe to run from several processes at once. */
  async migrate(): Promise<void> {
    const client = await this.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await applyMigrations(client, {
        quotedSchema: this.q,
        table: 'schema_migrations',
        lockKey: `metering/event-store/migrate/${this.schema}`,
        migrations: MIGRATIONS,
      });
      await client.query('COMMIT');
    } catch (err) {
      broken = isConnectionError(err);
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      throw this.translate(err);
    } finally {
      client.release(broken);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  /**
   * Group commit: appends requested in the same turn of the event loop, or while the previous
   * group is being written, go into ONE write (see `writeGroup`). Each request is checked on its
   * own (idempotent retry, expected revision, duplicate ids) and fails alone; the promise settles
   * once the group's statement has committed.
   */
  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.assertOpen();
    const req = prepareRequest(streamName, events, expected, this.maxAppendBytes);
    let bytes = 0;
    for (const e of req.events) bytes += preparedEventBytes(e);
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ req, bytes, resolve, reject });
      this.scheduleGroup();
    });
  }

  private scheduleGroup(): void {
    if (this.groupScheduled || this.writing) return;
    this.groupScheduled = true;
    setImmediate(() => {
      this.groupScheduled = false;
      this.startGroup();
    });
  }

  /** Takes the next group (capped by count and bytes, at least one request) and writes it. */
  private startGroup(): void {
    if (this.writing || this.pending.length === 0) return;
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < MAX_GROUP_REQUESTS) {
      const b = this.pending[n].bytes;
      if (n > 0 && bytes + b > MAX_GROUP_BYTES) break;
      bytes += b;
      n++;
    }
    const group = this.pending.splice(0, n);
    this.writing = this.writeGroup(group).finally(() => {
      this.writing = null;
      if (this.pending.length) this.scheduleGroup();
    });
  }

  /**
   * Writes one group: plan once for all its streams and ids, decide each request against the
   * state left by the earlier ones (a failed check rejects that request only), then allocate
   * positions and insert every accepted event in ONE statement (its own transaction: one commit,
   * positions in request order from the counter row, as for a single append). A lost race on a
   * unique key or a serialization failure re-plans the whole group; once retries run out, each
   * request is tried alone so each gets its precise outcome. Any other failure of the statement
   * (connection lost, ...) rejects every request of the group with the translated error.
   */
  private async writeGroup(group: PendingAppend[]): Promise<void> {
    const reqs = group.map((g) => g.req);
    for (let attempt = 1; ; attempt++) {
      try {
        const outcomes = await this.appendOnce((text, values) => this.pool.query(text, values), reqs, true);
        let wrote = false;
        outcomes.forEach((o, i) => {
          if ('error' in o) group[i].reject(this.translate(o.error));
          else {
            if (!o.result.alreadyAppended && reqs[i].events.length > 0) wrote = true;
            group[i].resolve(o.result);
          }
        });
        if (wrote) this.notify();
        return;
      } catch (err) {
        const code = errCode(err);
        const retryable = code === '23505' || (code !== undefined && RETRY_SQLSTATES.has(code));
        if (retryable && attempt < MAX_APPEND_ATTEMPTS) continue;
        if (retryable && group.length > 1) {
          for (const g of group) await this.appendAttempts([g.req]).then(([r]) => g.resolve(r), g.reject);
          return;
        }
        const e = group.length === 1 ? await this.translateWriteError(err, reqs) : this.translate(err);
        for (const g of group) g.reject(e);
        return;
      }
    }
  }

  /** Appends to several streams in one transaction: all or nothing. */
  async appendMany(batch: AppendRequest[]): Promise<AppendResult[]> {
    const reqs = prepareBatch(batch, this.maxAppendBytes);
    if (reqs.length === 0) return [];
    return this.appendWithRetry(reqs);
  }

  /**
   * Appends inside the caller's open transaction on `client` (BEGIN ... COMMIT are the caller's),
   * so read models or an outbox can commit atomically with the events. The global-position lock
   * is held until the caller commits or rolls back. No retry: on a conflict the caller's
   * transaction is aborted and the translated error (WrongExpectedRevisionError,
   * DuplicateEventIdError) is thrown; the caller rolls back and decides again. Use READ
   * COMMITTED (the default): under REPEATABLE READ / SERIALIZABLE the position allocation fails
   * with a serialization error (40001) whenever another append committed after the caller's
   * snapshot was taken.
   */
  async appendManyInTransaction(client: ClientBase, batch: AppendRequest[]): Promise<AppendResult[]> {
    this.assertOpen();
    const reqs = prepareBatch(batch, this.maxAppendBytes);
    if (reqs.length === 0) return [];
    try {
      return allOrNothing(await this.appendOnce((text, values) => client.query(text, values), reqs, false));
    } catch (err) {
      throw await this.translateWriteError(err, reqs);
    }
  }

  private async appendWithRetry(reqs: PreparedRequest[]): Promise<AppendResult[]> {
    this.assertOpen();
    return this.appendAttempts(reqs);
  }

  /** All-or-nothing append of `reqs` with re-planning on a lost unique-key race. */
  private async appendAttempts(reqs: PreparedRequest[]): Promise<AppendResult[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = allOrNothing(await this.appendOnce((text, values) => this.pool.query(text, values), reqs, false));
        if (results.some((r, i) => !r.alreadyAppended && reqs[i].events.length > 0)) this.notify();
        return results;
      } catch (err) {
        // A concurrent writer won a unique key between our plan and our insert: plan again, and
        // the plan reports the precise outcome (idempotent retry, duplicate id or wrong revision).
        const code = errCode(err);
        if ((code === '23505' || (code !== undefined && RETRY_SQLSTATES.has(code))) && attempt < MAX_APPEND_ATTEMPTS) continue;
        throw await this.translateWriteError(err, reqs);
      }
    }
  }

  /**
   * One attempt: plan (one query), then allocate positions and insert every event of the batch
   * in one statement. With the pool, that statement is its own transaction. `alone`: a request
   * that fails its checks gets its error as its outcome and the others go on (group commit);
   * otherwise the first failed check throws and nothing is written (appendMany).
   */
  private async appendOnce(
    query: <R extends QueryResultRow>(text: string, values: unknown[]) => Promise<QueryResult<R>>,
    reqs: PreparedRequest[],
    alone: boolean,
  ): Promise<Outcome[]> {
    const streams = [...new Set(reqs.map((r) => r.streamName))];
    const ids = reqs.flatMap((r) => r.events.map((e) => e.id));
    const planRows = await query<{
      k: number;
      stream_name: string;
      revision: string | null;
      global_position: string | null;
      event_id: string | null;
    }>(this.sql.plan, [streams, ids]);
    const tips = new Map<string, StreamTip>();
    const existing = new Map<string, ExistingEvent>();
    for (const r of planRows.rows) {
      if (r.k === 0) {
        tips.set(
          r.stream_name,
          r.revision === null
            ? { revision: -1, lastGlobalPosition: 0n }
            : { revision: Number(r.revision), lastGlobalPosition: BigInt(r.global_position as string) },
        );
      } else {
        existing.set(r.event_id as string, {
          id: r.event_id as string,
          streamName: r.stream_name,
          revision: Number(r.revision),
          globalPosition: BigInt(r.global_position as string),
        });
      }
    }

    // Decide every request against the state left by the earlier ones. Positions of events
    // written by this batch are only known after the insert (placeholder -1n, patched below).
    const PENDING = -1n;
    const results: Outcome[] = [];
    // Per result: the id whose position is its lastGlobalPosition when that is still pending.
    const alreadyLastId: (string | null)[] = [];
    const pendingLastIdByStream = new Map<string, string>();
    const cols = { stream: [] as string[], revision: [] as number[], id: [] as string[], type: [] as string[], data: [] as string[], metadata: [] as string[] };
    for (const req of reqs) {
      const tip = tips.get(req.streamName) as StreamTip;
      let d: PlanDecision;
      try {
        d = decide(req, tip, existing);
      } catch (error) {
        if (!alone) throw error;
        // Failed its own check: nothing of it is recorded in tips/existing, the others go on.
        results.push({ error });
        alreadyLastId.push(null);
        continue;
      }
      if (d.kind !== 'write') {
        results.push({ result: d.result });
        alreadyLastId.push(d.kind === 'already' ? d.lastEventId : (pendingLastIdByStream.get(req.streamName) ?? null));
        continue;
      }
      req.events.forEach((e, i) => {
        const revision = d.firstRevision + i;
        cols.stream.push(req.streamName);
        cols.revision.push(revision);
        cols.id.push(e.id);
        cols.type.push(e.type);
        cols.data.push(e.data);
        cols.metadata.push(e.metadata);
        existing.set(e.id, { id: e.id, streamName: req.streamName, revision, globalPosition: PENDING });
      });
      tips.set(req.streamName, { revision: d.result.nextExpectedRevision, lastGlobalPosition: PENDING });
      const lastId = req.events[req.events.length - 1].id;
      pendingLastIdByStream.set(req.streamName, lastId);
      results.push({ result: { ...d.result, lastGlobalPosition: PENDING } });
      alreadyLastId.push(lastId);
    }
    if (cols.id.length === 0) return results;

    const inserted = await query<{ event_id: string; global_position: string }>(this.sql.insert, [
      cols.id.length,
      cols.stream,
      cols.revision,
      cols.id,
      cols.type,
      cols.data,
      cols.metadata,
    ]);
    const positions = new Map(inserted.rows.map((r) => [r.event_id, BigInt(r.global_position)]));
    return results.map((o, i) => {
      if ('error' in o || o.result.lastGlobalPosition !== PENDING) return o;
      const pos = positions.get(alreadyLastId[i] as string);
      if (pos === undefined) throw new Error('event-store: inserted position missing (bug)');
      return { result: { ...o.result, lastGlobalPosition: pos } };
    });
  }

  /** Maps a failed write to the port's errors, reading the committed state when needed. */
  private async translateWriteError(err: unknown, reqs: PreparedRequest[]): Promise<unknown> {
    if (err instanceof WrongExpectedRevisionError || err instanceof DuplicateEventIdError) return err;
    const code = errCode(err);
    if (code === '23505') {
      const constraint = (err as { constraint?: string }).constraint;
      try {
        if (constraint === 'events_event_id_key') {
          const ids = reqs.flatMap((r) => r.events.map((e) => ({ stream: r.streamName, id: e.id })));
          const { rows } = await this.pool.query<{ event_id: string }>(
            `SELECT event_id FROM ${this.q}.events WHERE event_id = ANY($1::uuid[])`,
            [ids.map((x) => x.id)],
          );
          const hit = ids.find((x) => rows.some((r) => r.event_id === x.id)) ?? ids[0];
          return new DuplicateEventIdError(hit.stream, hit.id);
        }
        // (stream, revision) taken by a concurrent writer: report the stream that moved.
        let fallback: WrongExpectedRevisionError | null = null;
        for (const r of reqs) {
          if (r.events.length === 0) continue;
          const actual = await this.streamRevision(r.streamName);
          const e = new WrongExpectedRevisionError(r.streamName, r.expected, actual);
          if (r.expected !== 'any' && (r.expected === 'no_stream' ? actual !== -1 : actual !== r.expected)) return e;
          fallback ??= e;
        }
        if (fallback) return fallback;
      } catch (inner) {
        return this.translate(inner);
      }
    }
    return this.translate(err);
  }

  // ------------------------------------------------------------------------------------------
  // Reads

  async readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    const { fromRevision, maxCount } = normaliseReadStream(options);
    const { rows } = await this.query<EventRow>(this.sql.readStream, [streamName, fromRevision, maxCount]);
    return rows.map(toStored);
  }

  async streamRevision(streamName: string): Promise<number> {
    const { rows } = await this.query<{ revision: string }>(this.sql.tip, [streamName]);
    return rows.length ? Number(rows[0].revision) : -1;
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    const o = normaliseReadAll(options);
    const { rows } = await this.query<EventRow>(this.sql.readAll, [o.after.toString(), o.streamPrefix, o.types, o.maxCount]);
    return rows.map(toStored);
  }

  async headPosition(): Promise<bigint> {
    const { rows } = await this.query<{ head: string | null }>(this.sql.head, []);
    return rows[0]?.head ? BigInt(rows[0].head) : 0n;
  }

  async hasPosition(position: bigint): Promise<boolean> {
    if (typeof position !== 'bigint' || position < 0n) return false;
    if (position === 0n) return true;
    const { rows } = await this.query(`SELECT 1 FROM ${this.q}.events WHERE global_position = $1`, [position.toString()]);
    return rows.length > 0;
  }

  async storeId(): Promise<string> {
    const { rows } = await this.query<{ store_id: string }>(`SELECT store_id FROM ${this.q}.store_identity`, []);
    if (!rows[0]) throw new Error(`PostgreSQL schema ${this.schema} has no store identity (run the migrations)`);
    return rows[0].store_id;
  }

  async readEventsById(ids: string[]): Promise<StoredEvent[]> {
    const uuids = ids.map((i) => i.toLowerCase()).filter((i) => UUID_RE.test(i));
    if (uuids.length === 0) return [];
    const { rows } = await this.query<EventRow>(`SELECT ${COLUMNS} FROM ${this.q}.events WHERE event_id = ANY($1::uuid[])`, [uuids]);
    return rows.map(toStored);
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots

  async readSnapshot(streamName: string): Promise<Snapshot | null> {
    const { rows } = await this.query<{ revision: string; schema: number; data: string }>(
      `SELECT revision::text AS revision, schema, data FROM ${this.q}.snapshots WHERE stream_name = $1`,
      [streamName],
    );
    const r = rows[0];
    return r ? { streamName, revision: Number(r.revision), schema: r.schema, data: r.data } : null;
  }

  /**
   * Two queries whatever the number of streams: the snapshots, then each stream's tail after its
   * snapshot (a LATERAL index scan per stream, at most `maxCount` rows each). A snapshot written
   * between the two is simply not used; events appended between them are in the tail.
   */
  async readColdStarts(streamNames: string[], maxCount: number): Promise<Map<string, ColdStart>> {
    if (!Number.isSafeInteger(maxCount) || maxCount < 1) throw new TypeError('maxCount must be a positive integer');
    const names = [...new Set(streamNames)];
    const out = new Map<string, ColdStart>();
    if (names.length === 0) return out;
    const snaps = await this.query<{ stream_name: string; revision: string; schema: number; data: string }>(
      `SELECT stream_name, revision::text AS revision, schema, data FROM ${this.q}.snapshots WHERE stream_name = ANY($1::text[])`,
      [names],
    );
    const snapshots = new Map<string, Snapshot>();
    for (const r of snaps.rows) snapshots.set(r.stream_name, { streamName: r.stream_name, revision: Number(r.revision), schema: r.schema, data: r.data });
    for (const n of names) out.set(n, { snapshot: snapshots.get(n) ?? null, events: [] });
    const { rows } = await this.query<EventRow>(
      `SELECT e.* FROM unnest($1::text[], $2::bigint[]) AS r(name, from_revision)
         CROSS JOIN LATERAL (
           SELECT ${COLUMNS} FROM ${this.q}.events
            WHERE stream_name = r.name AND revision >= r.from_revision
            ORDER BY revision LIMIT $3) AS e`,
      [names, names.map((n) => (snapshots.has(n) ? (snapshots.get(n) as Snapshot).revision + 1 : 0)), maxCount],
    );
    for (const r of rows) (out.get(r.stream_name) as ColdStart).events.push(toStored(r));
    // LATERAL rows come stream by stream in revision order; sorted again in case a plan interleaves them.
    for (const c of out.values()) if (c.events.length > 1) c.events.sort((a, b) => a.revision - b.revision);
    return out;
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    checkSnapshot(snapshot);
    await this.query(
      `INSERT INTO ${this.q}.snapshots (stream_name, revision, schema, data) VALUES ($1, $2, $3, $4)
       ON CONFLICT (stream_name) DO UPDATE SET revision = EXCLUDED.revision, schema = EXCLUDED.schema, data = EXCLUDED.data,
         written_at = now()
       WHERE EXCLUDED.revision > ${this.q}.snapshots.revision`,
      [snapshot.streamName, snapshot.revision, snapshot.schema, snapshot.data],
    );
  }

  async deleteSnapshots(): Promise<number> {
    const r = await this.query(`DELETE FROM ${this.q}.snapshots`, []);
    return r.rowCount ?? 0;
  }

  // ------------------------------------------------------------------------------------------
  // Subscriptions

  subscribe(options: SubscribeOptions): Subscription {
    this.assertOpen();
    normaliseReadAll({ after: options.after, streamPrefix: options.streamPrefix, types: options.types });
    return startTrackedPolling((o) => this.readAll(o), options, this.wakers, this.subscriptions);
  }

  notify(): void {
    this.wakers.wakeAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Appends requested before close() are written (or fail) before the pool goes.
    while (this.writing || this.pending.length) {
      if (this.writing) await this.writing;
      else await new Promise((r) => setImmediate(r));
    }
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (this.ownsPool) await this.pool.end();
  }

  // ------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new Error('event store is closed');
  }

  private async connect() {
    this.assertOpen();
    try {
      return await this.pool.connect();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private async query<R extends QueryResultRow>(text: string, values: unknown[]): Promise<QueryResult<R>> {
    this.assertOpen();
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): unknown {
    if (err instanceof StoreUnavailableError) return err;
    if (isConnectionError(err)) return unavailable(err);
    return err;
  }
}

function buildSql(s: string) {
  return {
    // Tip of each stream of the batch, plus every already-stored event among the batch's ids.
    plan: `
      SELECT 0 AS k, t.name AS stream_name, last.revision, last.global_position, NULL::uuid AS event_id
        FROM unnest($1::text[]) AS t(name)
        LEFT JOIN LATERAL (
          SELECT e.revision, e.global_position FROM ${s}.events e
           WHERE e.stream_name = t.name ORDER BY e.revision DESC LIMIT 1
        ) last ON TRUE
      UNION ALL
      SELECT 1, e.stream_name, e.revision, e.global_position, e.event_id
        FROM ${s}.events e WHERE e.event_id = ANY($2::uuid[])`,
    // Position allocation and insert in ONE statement: the counter row stays locked until this
    // transaction ends, which orders commits by position (see the header comment).
    insert: `
      WITH alloc AS (
        UPDATE ${s}.global_position SET value = value + $1::bigint WHERE id RETURNING value - $1::bigint AS base
      )
      INSERT INTO ${s}.events (global_position, stream_name, revision, event_id, type, data, metadata)
      SELECT alloc.base + e.ord, e.stream_name, e.revision, e.event_id, e.type, e.data::json, e.metadata::json
        FROM alloc,
             unnest($2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[])
               WITH ORDINALITY AS e(stream_name, revision, event_id, type, data, metadata, ord)
      RETURNING event_id, global_position`,
    readStream: `
      SELECT ${COLUMNS} FROM ${s}.events
       WHERE stream_name = $1 AND revision >= $2
       ORDER BY revision LIMIT $3`,
    tip: `SELECT revision FROM ${s}.events WHERE stream_name = $1 ORDER BY revision DESC LIMIT 1`,
    readAll: `
      SELECT ${COLUMNS} FROM ${s}.events
       WHERE global_position > $1::bigint
         AND ($2::text IS NULL OR starts_with(stream_name, $2::text))
         AND ($3::text[] IS NULL OR type = ANY($3::text[]))
       ORDER BY global_position
       LIMIT $4`,
    head: `SELECT max(global_position)::text AS head FROM ${s}.events`,
  };
}
