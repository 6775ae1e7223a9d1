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
 *
 * This file is the class; its parts live beside it: `migrations.ts` (the schema),
 * `postgres-connection.ts` (schema name and pool), `postgres-errors.ts` (error classification),
 * `postgres-sql.ts` (statements and row mapping), `postgres-append.ts` (the append planner and
 * writer, write-error translation), `postgres-group-commit.ts` (the group commit),
 * `postgres-reads.ts` (reads, positions, identity, reads by id) and `postgres-snapshots.ts`
 * (snapshots and cold starts).
 */
import { Pool, PoolConfig } from 'pg';
import type { ClientBase, QueryResult, QueryResultRow } from 'pg';
import {
  AppendRequest,
  AppendResult,
  ColdStart,
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
} from '../port';
import { PreparedRequest, prepareBatch, prepareRequest } from '../internal/append-plan';
import { normaliseBudget } from '../internal/append-budget';
import { Wakers, startTrackedPolling } from '../internal/polling-subscription';
import { normaliseReadAll } from '../internal/read-options';
import { MIGRATIONS, applyMigrations } from './migrations';
import { pgConnection } from './postgres-connection';
import { isConnectionError, translatePgError } from './postgres-errors';
import { MAX_APPEND_ATTEMPTS, allOrNothing, appendOnce, isRetryableWrite, translateWriteError as translatePgWriteError } from './postgres-append';
import { PgGroupCommit } from './postgres-group-commit';
import { PgSql, buildSql } from './postgres-sql';
import * as reads from './postgres-reads';
import * as snapshots from './postgres-snapshots';

export { pgConnection } from './postgres-connection';
export { isConnectionError } from './postgres-errors';

export interface PostgresEventStoreOptions {
  /** Connection string; ignored when `pool` is given. */
  url?: string;
  /** An existing pool (not closed by `close()`), used as it is (a pool the store creates turns JIT off: see postgres-connection.ts). */
  pool?: Pool;
  /** Extra settings for the pool this store creates from `url`. */
  poolConfig?: PoolConfig;
  /** Schema holding the tables. Default `metering`. */
  schema?: string;
  /** Byte budget of one append (AppendTooLargeError beyond it). Default: none. */
  maxAppendBytes?: number;
  /** Positions a read of $all (`readAll`, `readAllJson`) covers per query, at least (default SCAN_WINDOW, 10,000; smaller in tests). */
  readScanWindow?: number;
}

export class PostgresEventStore implements EventStore {
  /** The pool, shared with read models that want their own transactions. */
  readonly pool: Pool;
  readonly schema: string;
  private readonly ownsPool: boolean;
  private readonly q: string;
  private readonly sql: PgSql;
  /** What the reads and snapshots run on: this store's `query`, schema and statements. */
  private readonly ctx: reads.PgReadContext;
  private readonly wakers = new Wakers();
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  readonly maxAppendBytes: number | null;
  /** Group commit: appends waiting for the next group, the group being written. */
  private readonly group: PgGroupCommit;

  constructor(options: PostgresEventStoreOptions) {
    this.maxAppendBytes = normaliseBudget(options.maxAppendBytes);
    const c = pgConnection(options, 'PostgresEventStore');
    [this.schema, this.q, this.pool, this.ownsPool] = [c.schema, c.quoted, c.pool, c.ownsPool];
    this.sql = buildSql(this.q);
    const scanWindow = options.readScanWindow ?? reads.SCAN_WINDOW;
    if (!Number.isSafeInteger(scanWindow) || scanWindow < 1) throw new TypeError('readScanWindow must be an integer >= 1');
    this.ctx = { query: (text, values) => this.query(text, values), schema: this.schema, q: this.q, sql: this.sql, scanWindow };
    this.group = new PgGroupCommit({
      appendOnce: (reqs) => appendOnce((text, values) => this.pool.query(text, values), this.sql, reqs, true),
      appendAttempts: (reqs) => this.appendAttempts(reqs),
      translateWriteError: (err, reqs) => this.translateWriteError(err, reqs),
      notify: () => this.notify(),
    });
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
   * group is being written, go into ONE write (see `writeGroup` in postgres-group-commit.ts). Each
   * request is checked on its own (idempotent retry, expected revision, duplicate ids) and fails
   * alone; the promise settles once the group's statement has committed.
   */
  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.assertOpen();
    const req = prepareRequest(streamName, events, expected, this.maxAppendBytes);
    return this.group.enqueue(req);
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
      return allOrNothing(await appendOnce((text, values) => client.query(text, values), this.sql, reqs, false));
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
        const results = allOrNothing(await appendOnce((text, values) => this.pool.query(text, values), this.sql, reqs, false));
        if (results.some((r, i) => !r.alreadyAppended && reqs[i].events.length > 0)) this.notify();
        return results;
      } catch (err) {
        // A concurrent writer won a unique key between our plan and our insert: plan again, and
        // the plan reports the precise outcome (idempotent retry, duplicate id or wrong revision).
        if (isRetryableWrite(err) && attempt < MAX_APPEND_ATTEMPTS) continue;
        throw await this.translateWriteError(err, reqs);
      }
    }
  }

  /** Maps a failed write to the port's errors, reading the committed state when needed. */
  private translateWriteError(err: unknown, reqs: PreparedRequest[]): Promise<unknown> {
    return translatePgWriteError(err, reqs, { pool: this.pool, q: this.q, streamRevision: (s) => this.streamRevision(s) });
  }

  // ------------------------------------------------------------------------------------------
  // Reads

  async readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    return reads.readStream(this.ctx, streamName, options);
  }

  async streamRevision(streamName: string): Promise<number> {
    return reads.streamRevision(this.ctx, streamName);
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    return reads.readAll(this.ctx, options);
  }

  async readAllJson(options?: ReadAllOptions): Promise<StoredEventJson[]> {
    return reads.readAllJson(this.ctx, options);
  }

  async headPosition(): Promise<bigint> {
    return reads.headPosition(this.ctx);
  }

  async hasPosition(position: bigint): Promise<boolean> {
    return reads.hasPosition(this.ctx, position);
  }

  async storeId(): Promise<string> {
    return reads.storeId(this.ctx);
  }

  async readEventsById(ids: string[]): Promise<StoredEvent[]> {
    return reads.readEventsById(this.ctx, ids);
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots

  async readSnapshot(streamName: string): Promise<Snapshot | null> {
    return snapshots.readSnapshot(this.ctx, streamName);
  }

  /** The snapshots and tails of many streams in two queries (see postgres-snapshots.ts). */
  async readColdStarts(streamNames: string[], maxCount: number): Promise<Map<string, ColdStart>> {
    return snapshots.readColdStarts(this.ctx, streamNames, maxCount);
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    return snapshots.writeSnapshot(this.ctx, snapshot);
  }

  async deleteSnapshots(): Promise<number> {
    return snapshots.deleteSnapshots(this.ctx);
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
    await this.group.drain();
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
    return translatePgError(err);
  }
}
