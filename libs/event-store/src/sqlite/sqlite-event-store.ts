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
 *   write lock (busy_timeout waits for it).
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
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
import { ExistingEvent, PreparedRequest, StreamTip, decide, prepareBatch, prepareRequest } from '../internal/append-plan';
import { Wakers, startTrackedPolling } from '../internal/polling-subscription';
import { checkSnapshot, normaliseReadAll, normaliseReadStream } from '../internal/read-options';
import { normaliseBudget } from '../internal/append-budget';

export interface SqliteEventStoreOptions {
  /** How long a writer waits for another process's write lock before failing. Default 5000 ms. */
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
  /** Byte budget of one append (AppendTooLargeError beyond it). Default: none. */
  maxAppendBytes?: number;
}

interface GroupKnowledge {
  tips: Map<string, StreamTip>;
  existing: Map<string, ExistingEvent>;
}

interface EventRow {
  global_position: bigint;
  stream_name: string;
  revision: bigint;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  global_position INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_name     TEXT    NOT NULL,
  revision        INTEGER NOT NULL,
  event_id        TEXT    NOT NULL UNIQUE,
  type            TEXT    NOT NULL,
  data            TEXT    NOT NULL,
  metadata        TEXT    NOT NULL,
  recorded_at     TEXT    NOT NULL,
  UNIQUE (stream_name, revision)
);
CREATE TABLE IF NOT EXISTS snapshots (
  stream_name TEXT    PRIMARY KEY,
  revision    INTEGER NOT NULL,
  schema      INTEGER NOT NULL,
  data        TEXT    NOT NULL,
  written_at  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS store_identity (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  store_id TEXT    NOT NULL
);`;

const COLUMNS = 'global_position, stream_name, revision, event_id, type, data, metadata, recorded_at';

function toStored(row: EventRow): StoredEvent {
  return {
    id: row.event_id,
    streamName: row.stream_name,
    type: row.type,
    data: JSON.parse(row.data) as Record<string, unknown>,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    revision: Number(row.revision),
    globalPosition: row.global_position,
    recordedAt: row.recorded_at,
  };
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Lock or I/O trouble: the caller should retry later (and not commit its input offsets). */
function isTransient(code: string | undefined): boolean {
  return (
    code !== undefined &&
    /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|NOLFS)/.test(code)
  );
}

/** A request of a group commit failed after it began writing: the group's transaction is rolled back. */
class PartialWrite extends Error {
  constructor(readonly error: unknown) {
    super('an append failed after it began writing');
  }
}

export class SqliteEventStore implements EventStore {
  /** The better-sqlite3 handle, shared with the read models. */
  readonly db: Database.Database;
  private readonly ownsDb: boolean;
  private readonly wakers = new Wakers();
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  readonly maxAppendBytes: number | null;
  private readonly stmts: ReturnType<SqliteEventStore['prepareStatements']>;
  private readonly appendTx: (reqs: PreparedRequest[]) => AppendResult[];
  /** Group commit: appends waiting for the next flush (see `append`). */
  private pending: { req: PreparedRequest; resolve: (r: AppendResult) => void; reject: (e: unknown) => void }[] = [];
  private readonly groupTx: (group: SqliteEventStore['pending']) => { result?: AppendResult; error?: unknown }[];
  /** The group commit with each request in its own savepoint: the fallback of `groupTx`. */
  private readonly savepointGroupTx: (group: SqliteEventStore['pending']) => { result?: AppendResult; error?: unknown }[];

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
      this.db.pragma('journal_mode = WAL');
      // A page cache that holds the hot B-tree pages of many Spaces (SQLite's default is 2 MB);
      // the read models on the same handle share it. Negative = KiB.
      const cacheKb = options.cacheSizeKb ?? 65_536;
      if (!Number.isSafeInteger(cacheKb) || cacheKb < 0) throw new TypeError('cacheSizeKb must be an integer >= 0');
      this.db.pragma(`cache_size = -${cacheKb}`);
      this.db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      this.db.exec(SCHEMA);
      this.db.prepare('INSERT OR IGNORE INTO store_identity (id, store_id) VALUES (1, ?)').run(`sqlite:${randomUUID()}`);
      this.maxAppendBytes = normaliseBudget(options.maxAppendBytes);
    } catch (err) {
      throw this.translate(err);
    }
    this.stmts = this.prepareStatements();
    const tx = this.db.transaction((reqs: PreparedRequest[]) => this.appendInTransaction(reqs));
    // IMMEDIATE: take the write lock up front, so a concurrent writer in another process waits
    // (busy_timeout) instead of failing on a read-to-write lock upgrade.
    this.appendTx = (reqs) => tx.immediate(reqs);
    // First pass: the requests of a group one after the other in the group's transaction, no
    // savepoints. Every reason to refuse a request (expected revision, duplicate id, ...) is found
    // before it writes a row, so a refused request leaves the transaction as it was. A request that
    // throws after it began writing (unexpected) rolls the whole group back (PartialWrite), and the
    // group runs again the second way: each request in its own savepoint (a nested better-sqlite3
    // transaction), where a failure rolls back that request only and the others commit together.
    // Tips and stored ids of the whole group are read with two queries up front, then kept up to
    // date in memory as the group's requests write (only after a request's rows are all written).
    const flat = this.db.transaction((items: SqliteEventStore['pending']) => {
      const known = this.groupKnowledge(items.map((i) => i.req));
      return items.map(({ req }) => {
        let writing = false;
        try {
          return { result: this.appendOne(req, known, () => (writing = true)) };
        } catch (error) {
          if (writing) throw new PartialWrite(error);
          return { error };
        }
      });
    });
    const one = this.db.transaction((req: PreparedRequest, known: GroupKnowledge) => this.appendOne(req, known));
    const group = this.db.transaction((items: SqliteEventStore['pending']) => {
      const known = this.groupKnowledge(items.map((i) => i.req));
      return items.map(({ req }) => {
        try {
          return { result: one(req, known) };
        } catch (error) {
          return { error };
        }
      });
    });
    this.savepointGroupTx = (items) => group.immediate(items);
    this.groupTx = (items) => {
      try {
        return flat.immediate(items);
      } catch (err) {
        if (!(err instanceof PartialWrite)) throw err;
        return this.savepointGroupTx(items);
      }
    };
  }

  private prepareStatements() {
    const db = this.db;
    const tip = db
      .prepare<[string], { revision: bigint; global_position: bigint }>(
        'SELECT revision, global_position FROM events WHERE stream_name = ? ORDER BY revision DESC LIMIT 1',
      )
      .safeIntegers(true);
    const byIds = db
      .prepare<[string], { event_id: string; stream_name: string; revision: bigint; global_position: bigint }>(
        'SELECT event_id, stream_name, revision, global_position FROM events WHERE event_id IN (SELECT value FROM json_each(?))',
      )
      .safeIntegers(true);
    const insert = db
      .prepare<[string, number, string, string, string, string, string]>(
        'INSERT INTO events (stream_name, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .safeIntegers(true);
    const readStream = db
      .prepare<[string, number, number], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE stream_name = ? AND revision >= ? ORDER BY revision LIMIT ?`,
      )
      .safeIntegers(true);
    const readAll = db
      .prepare<{ after: bigint; prefix: string | null; types: string | null; limit: number }, EventRow>(
        `SELECT ${COLUMNS} FROM events
         WHERE global_position > @after
           AND (@prefix IS NULL OR substr(stream_name, 1, length(@prefix)) = @prefix)
           AND (@types IS NULL OR type IN (SELECT value FROM json_each(@types)))
         ORDER BY global_position
         LIMIT @limit`,
      )
      .safeIntegers(true);
    const head = db.prepare<[], { head: bigint | null }>('SELECT max(global_position) AS head FROM events').safeIntegers(true);
    const eventsByIds = db
      .prepare<[string], EventRow>(`SELECT ${COLUMNS} FROM events WHERE event_id IN (SELECT value FROM json_each(?))`)
      .safeIntegers(true);
    const readSnapshot = db.prepare<[string], { revision: number; schema: number; data: string }>(
      'SELECT revision, schema, data FROM snapshots WHERE stream_name = ?',
    );
    const writeSnapshot = db.prepare<[string, number, number, string, string]>(
      `INSERT INTO snapshots (stream_name, revision, schema, data, written_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(stream_name) DO UPDATE SET revision = excluded.revision, schema = excluded.schema, data = excluded.data,
         written_at = excluded.written_at
       WHERE excluded.revision > snapshots.revision`,
    );
    const deleteSnapshots = db.prepare('DELETE FROM snapshots');
    const tips = db
      .prepare<[string], { stream_name: string; revision: bigint; global_position: bigint }>(
        // One index probe per stream: the row at the stream's highest revision.
        `SELECT e.stream_name, e.revision, e.global_position FROM json_each(?) AS j
         JOIN events AS e ON e.stream_name = j.value
          AND e.revision = (SELECT max(revision) FROM events WHERE stream_name = j.value)`,
      )
      .safeIntegers(true);
    return { tip, tips, byIds, insert, readStream, readAll, head, eventsByIds, readSnapshot, writeSnapshot, deleteSnapshots };
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

  /** Commits every pending append in one transaction (group commit), then settles each promise. */
  private flush(): void {
    const items = this.pending;
    this.pending = [];
    if (items.length === 0) return;
    let outcomes: { result?: AppendResult; error?: unknown }[];
    try {
      if (this.closed) throw new Error('event store is closed');
      outcomes = this.run(() => this.groupTx(items));
    } catch (err) {
      // The transaction itself failed (lock, I/O, closed): nothing of the group was written.
      for (const it of items) it.reject(err);
      return;
    }
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
    const [result] = this.run(() => this.appendTx([req]));
    if (!result.alreadyAppended && req.events.length > 0) this.notify();
    return result;
  }

  /** Synchronous `appendMany` (see `appendSync`). */
  appendManySync(batch: AppendRequest[]): AppendResult[] {
    const reqs = prepareBatch(batch, this.maxAppendBytes);
    if (reqs.length === 0) return [];
    const results = this.run(() => this.appendTx(reqs));
    this.notify();
    return results;
  }

  private readTip(streamName: string): StreamTip {
    const row = this.stmts.tip.get(streamName);
    return row
      ? { revision: Number(row.revision), lastGlobalPosition: row.global_position }
      : { revision: -1, lastGlobalPosition: 0n };
  }

  private findExisting(ids: string[]): Map<string, ExistingEvent> {
    const map = new Map<string, ExistingEvent>();
    if (ids.length === 0) return map;
    for (const r of this.stmts.byIds.all(JSON.stringify(ids))) {
      map.set(r.event_id, {
        id: r.event_id,
        streamName: r.stream_name,
        revision: Number(r.revision),
        globalPosition: r.global_position,
      });
    }
    return map;
  }

  /**
   * What the store holds for a batch's streams and ids, read inside the write transaction (never
   * cached across transactions: another handle may have written) once per batch or group commit.
   */
  private groupKnowledge(reqs: PreparedRequest[]): GroupKnowledge {
    const streams = [...new Set(reqs.map((r) => r.streamName))];
    const tips = new Map<string, StreamTip>();
    for (const r of this.stmts.tips.all(JSON.stringify(streams)))
      tips.set(r.stream_name, { revision: Number(r.revision), lastGlobalPosition: r.global_position });
    const ids = reqs.flatMap((r) => r.events.map((e) => e.id));
    return { tips, existing: this.findExisting(ids) };
  }

  /**
   * One request of a batch or group; `known` moves forward only once its rows are written (in a
   * group commit a refused request wrote nothing, and one that failed while writing is rolled back
   * with the group or, in the savepoint fallback, alone, so a failed one leaves `known` as it was).
   * `beforeWrite` is called once its checks passed, before its first row.
   */
  private appendOne(req: PreparedRequest, known: GroupKnowledge, beforeWrite?: () => void): AppendResult {
    const tip = known.tips.get(req.streamName) ?? { revision: -1, lastGlobalPosition: 0n };
    const d = decide(req, tip, known.existing);
    if (d.kind !== 'write') return d.result;
    beforeWrite?.();
    const recordedAt = new Date().toISOString();
    const written: ExistingEvent[] = [];
    let last = 0n;
    for (let i = 0; i < req.events.length; i++) {
      const e = req.events[i];
      const revision = d.firstRevision + i;
      last = BigInt(this.stmts.insert.run(req.streamName, revision, e.id, e.type, e.data, e.metadata, recordedAt).lastInsertRowid);
      written.push({ id: e.id, streamName: req.streamName, revision, globalPosition: last });
    }
    // All its rows are written; only now is the group's view moved forward.
    known.tips.set(req.streamName, { revision: d.firstRevision + req.events.length - 1, lastGlobalPosition: last });
    for (const w of written) known.existing.set(w.id, w);
    return { ...d.result, lastGlobalPosition: last };
  }

  /** Runs inside the write transaction; any throw rolls the whole batch back. */
  private appendInTransaction(reqs: PreparedRequest[]): AppendResult[] {
    const known = this.groupKnowledge(reqs);
    return reqs.map((req) => this.appendOne(req, known));
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
    const o = normaliseReadAll(options);
    return this.run(() =>
      this.stmts.readAll
        .all({
          after: o.after,
          prefix: o.streamPrefix,
          types: o.types ? JSON.stringify(o.types) : null,
          limit: o.maxCount ?? -1,
        })
        .map(toStored),
    );
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

  /** One synchronous pass over the streams (nothing of this process can write in between). */
  async readColdStarts(streamNames: string[], maxCount: number): Promise<Map<string, ColdStart>> {
    if (!Number.isSafeInteger(maxCount) || maxCount < 1) throw new TypeError('maxCount must be a positive integer');
    return this.run(() => {
      const out = new Map<string, ColdStart>();
      for (const streamName of streamNames) {
        if (out.has(streamName)) continue;
        const row = this.stmts.readSnapshot.get(streamName);
        const snapshot = row ? { streamName, revision: Number(row.revision), schema: Number(row.schema), data: row.data } : null;
        const events = this.stmts.readStream.all(streamName, snapshot ? snapshot.revision + 1 : 0, maxCount).map(toStored);
        out.set(streamName, { snapshot, events });
      }
      return out;
    });
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

  subscribe(options: SubscribeOptions): Subscription {
    if (this.closed) throw new Error('event store is closed');
    normaliseReadAll({ after: options.after, streamPrefix: options.streamPrefix, types: options.types });
    return startTrackedPolling((o) => this.readAll(o), options, this.wakers, this.subscriptions);
  }

  notify(): void {
    this.wakers.wakeAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // appends already requested are committed (or fail) before the handle closes
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
    if (
      err instanceof WrongExpectedRevisionError ||
      err instanceof DuplicateEventIdError ||
      err instanceof StoreUnavailableError
    ) {
      return err;
    }
    const code = sqliteCode(err);
    if (isTransient(code)) return new StoreUnavailableError(`sqlite: ${(err as Error).message}`, err);
    return err;
  }
}
