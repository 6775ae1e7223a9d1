/**
 * The write transactions and the group commit of the SQLite adapter (see sqlite-event-store.ts):
 * an all-or-nothing batch (`appendTx`), and a group of requests in ONE transaction where each
 * request is checked on its own and fails alone (`groupTx`, falling back to one savepoint per
 * request, `savepointGroupTx`, should a request fail after it began writing).
 */
import Database from 'better-sqlite3';
import { AppendResult } from '../port';
import { ExistingEvent, PreparedRequest, StreamTip, decide } from '../internal/append-plan';
import { CommittedBatch, CommittedRow } from '../internal/commit-feed';
import { SqliteStatements } from './sqlite-schema';

/** An append waiting for the next group commit. */
export interface PendingAppend {
  req: PreparedRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
  /** When a flush first found another connection holding the write lock for it (ms, `performance.now()`). */
  lockWaitSince?: number;
}

/** One request's outcome in a group: its result, or the error of its own check. */
export type Outcome = { result?: AppendResult; error?: unknown };

interface GroupKnowledge {
  tips: Map<string, StreamTip>;
  existing: Map<string, ExistingEvent>;
  /** The head when the write transaction began, and the rows written since (see commit-feed.ts). */
  commit: CommittedBatch;
}

/** A request of a group commit failed after it began writing: the group's transaction is rolled back. */
class PartialWrite extends Error {
  constructor(readonly error: unknown) {
    super('an append failed after it began writing');
  }
}

/**
 * What a write transaction did: each request's outcome, and the rows it wrote with the head before
 * it (for the commit feed; only meaningful once the transaction committed, i.e. when it was not
 * nested in the app's own transaction).
 */
export interface Written<T> {
  outcomes: T[];
  commit: CommittedBatch;
}

export interface WriteTransactions {
  /** All or nothing: a batch in one BEGIN IMMEDIATE transaction (a savepoint inside the app's own). */
  appendTx: (reqs: PreparedRequest[]) => Written<AppendResult>;
  /** The group commit: each request checked on its own, one commit for all. */
  groupTx: (group: PendingAppend[]) => Written<Outcome>;
  /** The group commit with each request in its own savepoint: the fallback of `groupTx`. */
  savepointGroupTx: (group: PendingAppend[]) => Written<Outcome>;
}

/** The write transactions of one handle. */
export function writeTransactions(db: Database.Database, stmts: SqliteStatements): WriteTransactions {
  const tx = db.transaction((reqs: PreparedRequest[]) => appendInTransaction(stmts, reqs));
  // IMMEDIATE: take the write lock up front, so a concurrent writer in another process waits
  // (busy_timeout) instead of failing on a read-to-write lock upgrade.
  const appendTx = (reqs: PreparedRequest[]) => tx.immediate(reqs);
  // First pass: the requests of a group one after the other in the group's transaction, no
  // savepoints. Every reason to refuse a request (expected revision, duplicate id, ...) is found
  // before it writes a row, so a refused request leaves the transaction as it was. A request that
  // throws after it began writing (unexpected) rolls the whole group back (PartialWrite), and the
  // group runs again the second way: each request in its own savepoint (a nested better-sqlite3
  // transaction), where a failure rolls back that request only and the others commit together.
  // Tips and stored ids of the whole group are read with two queries up front, then kept up to
  // date in memory as the group's requests write (only after a request's rows are all written).
  const flat = db.transaction((items: PendingAppend[]): Written<Outcome> => {
    const known = groupKnowledge(stmts, items.map((i) => i.req));
    const outcomes = items.map(({ req }) => {
      let writing = false;
      try {
        return { result: appendOne(stmts, req, known, () => (writing = true)) };
      } catch (error) {
        if (writing) throw new PartialWrite(error);
        return { error };
      }
    });
    return { outcomes, commit: known.commit };
  });
  const one = db.transaction((req: PreparedRequest, known: GroupKnowledge) => appendOne(stmts, req, known));
  const group = db.transaction((items: PendingAppend[]): Written<Outcome> => {
    const known = groupKnowledge(stmts, items.map((i) => i.req));
    const outcomes = items.map(({ req }) => {
      try {
        return { result: one(req, known) };
      } catch (error) {
        return { error };
      }
    });
    return { outcomes, commit: known.commit };
  });
  const savepointGroupTx = (items: PendingAppend[]): Written<Outcome> => group.immediate(items);
  const groupTx = (items: PendingAppend[]): Written<Outcome> => {
    try {
      return flat.immediate(items);
    } catch (err) {
      if (!(err instanceof PartialWrite)) throw err;
      return savepointGroupTx(items);
    }
  };
  return { appendTx, groupTx, savepointGroupTx };
}

function findExisting(stmts: SqliteStatements, ids: string[]): Map<string, ExistingEvent> {
  const map = new Map<string, ExistingEvent>();
  if (ids.length === 0) return map;
  for (const r of stmts.byIds.all(JSON.stringify(ids))) {
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
function groupKnowledge(stmts: SqliteStatements, reqs: PreparedRequest[]): GroupKnowledge {
  const streams = [...new Set(reqs.map((r) => r.streamName))];
  const tips = new Map<string, StreamTip>();
  for (const r of stmts.tips.all(JSON.stringify(streams)))
    tips.set(r.stream_name, { revision: Number(r.revision), lastGlobalPosition: r.global_position });
  const ids = reqs.flatMap((r) => r.events.map((e) => e.id));
  // Read inside the write transaction (the write lock is held): every position after it is written by this transaction.
  const before = stmts.head.get()?.head ?? 0n;
  return { tips, existing: findExisting(stmts, ids), commit: { before, rows: [] } };
}

/**
 * One request of a batch or group; `known` moves forward only once its rows are written (in a
 * group commit a refused request wrote nothing, and one that failed while writing is rolled back
 * with the group or, in the savepoint fallback, alone, so a failed one leaves `known` as it was).
 * `beforeWrite` is called once its checks passed, before its first row.
 */
function appendOne(stmts: SqliteStatements, req: PreparedRequest, known: GroupKnowledge, beforeWrite?: () => void): AppendResult {
  const tip = known.tips.get(req.streamName) ?? { revision: -1, lastGlobalPosition: 0n };
  const d = decide(req, tip, known.existing);
  if (d.kind !== 'write') return d.result;
  beforeWrite?.();
  const recordedAt = new Date().toISOString();
  const written: ExistingEvent[] = [];
  const rows: CommittedRow[] = [];
  let last = 0n;
  for (let i = 0; i < req.events.length; i++) {
    const e = req.events[i];
    const revision = d.firstRevision + i;
    last = BigInt(stmts.insert.run(req.streamName, revision, e.id, e.type, e.data, e.metadata, recordedAt).lastInsertRowid);
    written.push({ id: e.id, streamName: req.streamName, revision, globalPosition: last });
    rows.push({ globalPosition: last, streamName: req.streamName, revision, id: e.id, type: e.type, data: e.data, metadata: e.metadata, recordedAt });
  }
  // All its rows are written; only now is the group's view moved forward.
  known.tips.set(req.streamName, { revision: d.firstRevision + req.events.length - 1, lastGlobalPosition: last });
  for (const w of written) known.existing.set(w.id, w);
  for (const r of rows) known.commit.rows.push(r);
  return { ...d.result, lastGlobalPosition: last };
}

/** Runs inside the write transaction; any throw rolls the whole batch back. */
function appendInTransaction(stmts: SqliteStatements, reqs: PreparedRequest[]): Written<AppendResult> {
  const known = groupKnowledge(stmts, reqs);
  const outcomes = reqs.map((req) => appendOne(stmts, req, known));
  return { outcomes, commit: known.commit };
}
