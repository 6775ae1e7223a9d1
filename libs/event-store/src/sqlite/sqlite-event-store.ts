/**
 * Embedded event store on better-sqlite3 (the default deployment).
 *
 * - One `events` table; `global_position` is the AUTOINCREMENT rowid, so positions are never
 *   reused. SQLite has a single writer and every append runs in a BEGIN IMMEDIATE transaction,
 *   so positions are assigned and committed in the same order: a reader can never see position
 *   11 before 10 (no visibility gap, unlike PostgreSQL).
 * - The app keeps its read models in the same file: pass the same `Database` handle, or use the
 *   public `db`. An append called inside the app's own `db.transaction(...)` becomes a savepoint
 *   of it (better-sqlite3 nests transactions), so events and read models commit together.
 * - better-sqlite3 is synchronous. Concurrent `append` calls of one process are group-committed:
 *   the appends requested in the same turn of the event loop run in ONE write transaction, each
 *   checked against its expected revision one after the other (a conflict or bad request fails
 *   that append alone: every such check runs before the append writes anything). One commit (one
 *   fsync with synchronous=FULL) serves them all; every promise resolves only after that commit.
 *   Should an append fail after it began writing (not expected: its checks passed), the whole
 *   transaction is rolled back and the group runs again with each append in its own savepoint,
 *   so that failure stays that append's alone. (A savepoint on every append, the way it was
 *   first done, about doubled the CPU time of the inserts: SQLite keeps a sub-journal of the
 *   pages each savepoint changes.) Several processes on the same file are serialised by SQLite's
 *   write lock: a group that finds it held is tried again a few ms later, so the event loop keeps
 *   serving while it waits (up to `busyTimeoutMs` per append).
 * - Subscriptions are fed the events of this process's commits instead of reading them back,
 *   when a commit follows what they delivered (the head read inside its write transaction says
 *   so); otherwise they read, as a polling subscription does (`internal/commit-feed.ts`).
 *
 * This file is the class; its parts live beside it: `sqlite-schema.ts` (the schema, row mapping
 * and prepared statements), `sqlite-group-commit.ts` (the write transactions: the all-or-nothing
 * batch and the group commit with its savepoint fallback) and `sqlite-errors.ts` (error
 * classification).
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  AppendRequest,
  AppendResult,
  StoreUnavailableError,
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
import { StreamTip, prepareBatch, prepareRequest } from '../internal/append-plan';
import { Wakers, startTrackedPolling } from '../internal/polling-subscription';
import { CommitFeedReader, CommittedBatch, CoveredPage } from '../internal/commit-feed';
import { checkSnapshot, normaliseReadAll, normaliseReadStream } from '../internal/read-options';
import { normaliseBudget } from '../internal/append-budget';
import { isLockHeld, translateSqliteError } from './sqlite-errors';
import { Outcome, PendingAppend, WriteTransactions, writeTransactions } from './sqlite-group-commit';
import { SCHEMA, SqliteStatements, prepareStatements, readAllParams, toStored } from './sqlite-schema';

export interface SqliteEventStoreOptions {
  /**
   * How long a writer waits for another connection's write lock (another process on the same file)
   * before failing with StoreUnavailableError. Default 5000 ms. `append` waits without holding the
   * event loop (its group is tried again every few ms: see `flush`); `appendMany`, `appendSync`,
   * `appendManySync` and every read wait inside SQLite (busy_timeout), which blocks the thread.
   */
  busyTimeoutMs?: number;
  /** SQLite page cache of this handle, KiB. Default 65536 (64 MiB). */
  cacheSizeKb?: number;
  /**
   * `NORMAL` (default): in WAL mode a commit survives a process crash; an OS crash or power
   * loss may roll back the last commits (never corrupts). `FULL`: fsync on every commit, also
   * survives power loss, slower. Choose FULL when the input offsets are committed elsewhere
   * (e.g. Kafka) right after an append and the host may lose power.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * WAL pages after which a commit checkpoints the WAL into the database file (SQLite's
   * `wal_autocheckpoint`). Default 16384 (64 MiB of 4 KiB pages; SQLite's own default is 1000).
   * A checkpoint writes every page the WAL holds and fsyncs the file, on the committing thread;
   * with one checkpoint per 64 MiB instead of per 4 MiB a page rewritten by many commits is
   * written once (bench:flat: 25-40 % more events/s on both of its workloads). After a
   * checkpoint the WAL file is truncated back to at most this size (`journal_size_limit`).
   */
  walAutocheckpointPages?: number;
  /** Byte budget of one append (AppendTooLargeError beyond it). Default: none. */
  maxAppendBytes?: number;
}

/** The store's default `wal_autocheckpoint` (see `walAutocheckpointPages`). */
export const SQLITE_WAL_AUTOCHECKPOINT_PAGES = 16_384;

/**
 * A handle's WAL checkpoint interval, in pages (`wal_autocheckpoint`), and the WAL file truncated
 * back to that size after a checkpoint (`journal_size_limit`). The store's handle and the read
 * models' own file use the same.
 */
export function setWalCheckpointInterval(db: Database.Database, pages = SQLITE_WAL_AUTOCHECKPOINT_PAGES): void {
  db.pragma(`wal_autocheckpoint = ${pages}`);
  db.pragma(`journal_size_limit = ${pages * (db.pragma('page_size', { simple: true }) as number)}`);
}

export class SqliteEventStore implements EventStore {
  /** The better-sqlite3 handle, shared with the read models. */
  readonly db: Database.Database;
  private readonly ownsDb: boolean;
  private readonly wakers = new Wakers();
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  readonly maxAppendBytes: number | null;
  private readonly stmts: SqliteStatements;
  /** The all-or-nothing batch and the group commit (see sqlite-group-commit.ts). */
  private readonly tx: WriteTransactions;
  /** Group commit: appends waiting for the next flush (see `append`). */
  private pending: PendingAppend[] = [];
  /** `busyTimeoutMs`: how long an append waits for another connection's write lock. */
  private readonly busyTimeoutMs: number;
  /** The next try of a group that found the write lock held elsewhere (see `flush`). */
  private lockRetry: NodeJS.Timeout | null = null;
  /** Consecutive tries that found the write lock held (the retry delay grows with them). */
  private lockTries = 0;
  /** The subscriptions' commit-feed readers: fed this process's commits (see internal/commit-feed.ts). */
  private readonly feeds = new Set<CommitFeedReader>();

  constructor(fileOrDb: string | Database.Database, options: SqliteEventStoreOptions = {}) {
    try {
      if (typeof fileOrDb === 'string') {
        this.db = new Database(fileOrDb);
        this.ownsDb = true;
      } else {
        this.db = fileOrDb;
        this.ownsDb = false;
      }
      const busy = options.busyTimeoutMs ?? 5000;
      if (!Number.isSafeInteger(busy) || busy < 0) throw new TypeError('busyTimeoutMs must be an integer >= 0');
      this.db.pragma(`busy_timeout = ${busy}`);
      this.busyTimeoutMs = busy;
      this.db.pragma('journal_mode = WAL');
      // A page cache that holds the hot B-tree pages of many Spaces (SQLite's default is 2 MB);
      // the read models on the same handle share it. Negative = KiB.
      const cacheKb = options.cacheSizeKb ?? 65_536;
      if (!Number.isSafeInteger(cacheKb) || cacheKb < 0) throw new TypeError('cacheSizeKb must be an integer >= 0');
      this.db.pragma(`cache_size = -${cacheKb}`);
      this.db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      const walPages = options.walAutocheckpointPages ?? SQLITE_WAL_AUTOCHECKPOINT_PAGES;
      if (!Number.isSafeInteger(walPages) || walPages < 0) throw new TypeError('walAutocheckpointPages must be an integer >= 0');
      setWalCheckpointInterval(this.db, walPages);
      this.db.exec(SCHEMA);
      this.db.prepare('INSERT OR IGNORE INTO store_identity (id, store_id) VALUES (1, ?)').run(`sqlite:${randomUUID()}`);
      this.maxAppendBytes = normaliseBudget(options.maxAppendBytes);
    } catch (err) {
      throw this.translate(err);
    }
    this.stmts = prepareStatements(this.db);
    this.tx = writeTransactions(this.db, this.stmts);
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    if (this.closed) throw new Error('event store is closed');
    const req = prepareRequest(streamName, events, expected, this.maxAppendBytes);
    // Inside the app's own transaction there is nothing to group: append now, as a savepoint.
    if (this.db.inTransaction) return this.appendSync(streamName, events, expected);
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Commits every pending append in one transaction (group commit), then settles each promise.
   *
   * Another connection's write lock (another process on the same file) is waited for without
   * holding the event loop: the group's BEGIN IMMEDIATE does not wait (busy_timeout 0 for it), and
   * a group that finds the lock held is tried again a few ms later, with the appends made
   * meanwhile, until each append has waited `busyTimeoutMs` (then StoreUnavailableError, as
   * before). SQLite's own wait (busy_timeout) sleeps in the calling thread: with another process
   * writing a flood, the event loop of this one stood still for up to its whole timeout, and every
   * request it served waited too. A failed transaction is rolled back whole, so nothing of a group
   * that is tried again was written. `wait` (on close): SQLite's own wait, as before.
   */
  private flush(wait = false): void {
    if (this.lockRetry) {
      clearTimeout(this.lockRetry);
      this.lockRetry = null;
    }
    const items = this.pending;
    this.pending = [];
    if (items.length === 0) return;
    let written: ReturnType<WriteTransactions['groupTx']>;
    try {
      if (this.closed) throw new Error('event store is closed');
      written = wait ? this.tx.groupTx(items) : this.withoutBusyWait(() => this.tx.groupTx(items));
    } catch (err) {
      if (!wait && isLockHeld(err)) {
        this.retryLater(items);
        return;
      }
      this.lockTries = 0;
      // The transaction itself failed (lock, I/O, closed): nothing of the group was written.
      const translated = this.translate(err);
      for (const it of items) it.reject(translated);
      return;
    }
    this.lockTries = 0;
    const outcomes: Outcome[] = written.outcomes;
    // Committed: the subscriptions' feeds get its rows before they are woken (notify below).
    this.publish(written.commit);
    let wrote = false;
    outcomes.forEach((o, i) => {
      if (o.error !== undefined) items[i].reject(this.translate(o.error));
      else {
        const r = o.result as AppendResult;
        if (!r.alreadyAppended && items[i].req.events.length > 0) wrote = true;
        items[i].resolve(r);
      }
    });
    if (wrote) this.notify();
  }

  /** Runs `fn` with this handle's busy_timeout at 0: SQLITE_BUSY at once instead of a sleep. */
  private withoutBusyWait<T>(fn: () => T): T {
    this.db.pragma('busy_timeout = 0');
    try {
      return fn();
    } finally {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  /**
   * A group found the write lock held: appends that have waited `busyTimeoutMs` fail with
   * StoreUnavailableError; the others go back to the head of the queue (appends made meanwhile
   * join them) for a try in 1, 2, 4, 8, then every 10 ms.
   */
  private retryLater(items: PendingAppend[]): void {
    const now = performance.now();
    const waiting: PendingAppend[] = [];
    for (const it of items) {
      it.lockWaitSince ??= now;
      if (now - it.lockWaitSince >= this.busyTimeoutMs)
        it.reject(new StoreUnavailableError(`sqlite: the write lock was held by another connection for ${this.busyTimeoutMs} ms (busyTimeoutMs)`));
      else waiting.push(it);
    }
    if (waiting.length === 0) {
      this.lockTries = 0;
      return;
    }
    this.pending = [...waiting, ...this.pending];
    const delay = Math.min(10, 2 ** this.lockTries++);
    this.lockRetry = setTimeout(() => {
      this.lockRetry = null;
      this.flush();
    }, delay);
  }

  /** Appends to several streams in one transaction: all or nothing. */
  async appendMany(batch: AppendRequest[]): Promise<AppendResult[]> {
    return this.appendManySync(batch);
  }

  /**
   * Synchronous `append`, for use inside the app's own `db.transaction(...)` (it then runs as a
   * savepoint of that transaction: read-model writes and events commit or roll back together).
   * Throws the same errors as `append`.
   */
  appendSync(streamName: string, events: NewEvent[], expected: ExpectedRevision): AppendResult {
    const req = prepareRequest(streamName, events, expected, this.maxAppendBytes);
    const [result] = this.appendTx([req]);
    if (!result.alreadyAppended && req.events.length > 0) this.notify();
    return result;
  }

  /** Synchronous `appendMany` (see `appendSync`). */
  appendManySync(batch: AppendRequest[]): AppendResult[] {
    const reqs = prepareBatch(batch, this.maxAppendBytes);
    if (reqs.length === 0) return [];
    const results = this.appendTx(reqs);
    this.notify();
    return results;
  }

  /**
   * The all-or-nothing write. Inside the app's own transaction it is a savepoint that may still be
   * rolled back: its rows are not fed to the subscriptions (their next page is then a read).
   */
  private appendTx(reqs: Parameters<WriteTransactions['appendTx']>[0]): AppendResult[] {
    const nested = this.db.inTransaction;
    const written = this.run(() => this.tx.appendTx(reqs));
    if (!nested) this.publish(written.commit);
    return written.outcomes;
  }

  /** Hands a committed transaction's rows to every subscription's feed reader. */
  private publish(commit: CommittedBatch): void {
    if (commit.rows.length === 0) return;
    for (const f of this.feeds) f.push(commit);
  }

  private readTip(streamName: string): StreamTip {
    const row = this.stmts.tip.get(streamName);
    return row
      ? { revision: Number(row.revision), lastGlobalPosition: row.global_position }
      : { revision: -1, lastGlobalPosition: 0n };
  }

  // ------------------------------------------------------------------------------------------
  // Reads

  async readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    const { fromRevision, maxCount } = normaliseReadStream(options);
    return this.run(() => this.stmts.readStream.all(streamName, fromRevision, maxCount ?? -1).map(toStored));
  }

  async streamRevision(streamName: string): Promise<number> {
    return this.run(() => this.readTip(streamName).revision);
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    const params = readAllParams(options);
    return this.run(() => this.stmts.readAll.all(params).map(toStored));
  }

  async readAllJson(options?: ReadAllOptions): Promise<StoredEventJson[]> {
    const params = readAllParams(options);
    return this.run(() => {
      const rows = this.stmts.readAllJson.all(params);
      // Positions ascend: when the last is exact as a number, every one is.
      if (rows.length > 0 && !Number.isSafeInteger(rows[rows.length - 1].globalPosition)) throw new RangeError('global position beyond 2^53');
      for (const r of rows) r.globalPosition = BigInt(r.globalPosition);
      return rows as StoredEventJson[];
    });
  }

  async headPosition(): Promise<bigint> {
    return this.run(() => this.stmts.head.get()?.head ?? 0n);
  }

  async hasPosition(position: bigint): Promise<boolean> {
    if (typeof position !== 'bigint' || position < 0n) return false;
    if (position === 0n) return true;
    return this.run(() => this.db.prepare('SELECT 1 FROM events WHERE global_position = ?').pluck().get(position) !== undefined);
  }

  async storeId(): Promise<string> {
    return this.run(() => this.db.prepare('SELECT store_id FROM store_identity WHERE id = 1').pluck().get() as string);
  }

  async readEventsById(ids: string[]): Promise<StoredEvent[]> {
    if (ids.length === 0) return [];
    return this.run(() => this.stmts.eventsByIds.all(JSON.stringify(ids.map((i) => i.toLowerCase()))).map(toStored));
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots

  async readSnapshot(streamName: string): Promise<Snapshot | null> {
    return this.run(() => {
      const row = this.stmts.readSnapshot.get(streamName);
      return row ? { streamName, revision: Number(row.revision), schema: Number(row.schema), data: row.data } : null;
    });
  }

  /**
   * One synchronous pass over the streams in ONE read transaction: one snapshot of the store for
   * every stream, and no read transaction begun and ended per statement (in WAL mode that costs
   * several times the indexed read itself: about 7 µs against 1 µs per statement here).
   */
  async readColdStarts(streamNames: string[], maxCount: number): Promise<Map<string, ColdStart>> {
    if (!Number.isSafeInteger(maxCount) || maxCount < 1) throw new TypeError('maxCount must be a positive integer');
    return this.run(() => this.db.transaction(() => {
      const out = new Map<string, ColdStart>();
      for (const streamName of streamNames) {
        if (out.has(streamName)) continue;
        const row = this.stmts.readSnapshot.get(streamName);
        const snapshot = row ? { streamName, revision: Number(row.revision), schema: Number(row.schema), data: row.data } : null;
        const events = this.stmts.readStream.all(streamName, snapshot ? snapshot.revision + 1 : 0, maxCount).map(toStored);
        out.set(streamName, { snapshot, events });
      }
      return out;
    })());
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    checkSnapshot(snapshot);
    this.run(() => this.stmts.writeSnapshot.run(snapshot.streamName, snapshot.revision, snapshot.schema, snapshot.data, new Date().toISOString()));
  }

  async deleteSnapshots(): Promise<number> {
    return this.run(() => this.stmts.deleteSnapshots.run().changes);
  }

  // ------------------------------------------------------------------------------------------
  // Subscriptions

  /**
   * A polling subscription fed with this process's commits when they follow what it delivered
   * (no read back), reading otherwise: see internal/commit-feed.ts.
   */
  subscribe(options: SubscribeOptions): Subscription {
    if (this.closed) throw new Error('event store is closed');
    normaliseReadAll({ after: options.after, streamPrefix: options.streamPrefix, types: options.types });
    const feed = new CommitFeedReader((o) => this.readCovered(o), { streamPrefix: options.streamPrefix, types: options.types });
    this.feeds.add(feed);
    const sub = startTrackedPolling(feed.readPage, options, this.wakers, this.subscriptions);
    return {
      stop: async () => {
        this.feeds.delete(feed);
        await sub.stop();
      },
    };
  }

  /**
   * A page and how far it covers the subscription's events, in ONE read transaction: a page
   * shorter than asked reaches the head (read in the same snapshot), a full one its last event.
   */
  private readCovered(options: ReadAllOptions): CoveredPage {
    const params = readAllParams(options);
    return this.run(() =>
      this.db.transaction((): CoveredPage => {
        const events = this.stmts.readAll.all(params).map(toStored);
        // limit -1: no maxCount.
        if (params.limit >= 0 && events.length >= params.limit)
          return { events, covered: events.length > 0 ? events[events.length - 1].globalPosition : params.after };
        return { events, covered: this.stmts.head.get()?.head ?? 0n };
      })(),
    );
  }

  notify(): void {
    this.wakers.wakeAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(true); // appends already requested are committed (or fail) before the handle closes
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (this.ownsDb && this.db.open) this.db.close();
  }

  // ------------------------------------------------------------------------------------------

  private run<T>(fn: () => T): T {
    if (this.closed) throw new Error('event store is closed');
    try {
      return fn();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): unknown {
    return translateSqliteError(err);
  }
}
