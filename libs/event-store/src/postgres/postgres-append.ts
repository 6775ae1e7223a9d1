/**
 * The append planner and writer of the PostgreSQL adapter (see postgres-event-store.ts, "the
 * visibility gap"): one plan query for every stream and id of a batch or group, each request
 * decided against the state left by the earlier ones, then ONE statement that allocates the
 * positions from the counter row and inserts every accepted event. Also the translation of a
 * failed write (a lost unique-key race) into the port's errors.
 */
import type { Pool } from 'pg';
import { AppendResult, DuplicateEventIdError, WrongExpectedRevisionError } from '../port';
import { ExistingEvent, PlanDecision, PreparedRequest, StreamTip, decide } from '../internal/append-plan';
import { RETRY_SQLSTATES, errCode, translatePgError } from './postgres-errors';
import { PgSql, Query } from './postgres-sql';

/** Attempts for an append that lost a race on a unique key (re-planned each time). */
export const MAX_APPEND_ATTEMPTS = 8;

/** One request's outcome in a group: its result, or the error of its own check. */
export type Outcome = { result: AppendResult } | { error: unknown };

/** appendMany semantics: every outcome is a result (appendOnce threw otherwise). */
export function allOrNothing(outcomes: Outcome[]): AppendResult[] {
  return outcomes.map((o) => {
    if ('error' in o) throw o.error;
    return o.result;
  });
}

/**
 * One attempt: plan (one query), then allocate positions and insert every event of the batch
 * in one statement. With the pool, that statement is its own transaction. `alone`: a request
 * that fails its checks gets its error as its outcome and the others go on (group commit);
 * otherwise the first failed check throws and nothing is written (appendMany).
 */
export async function appendOnce(
  query: Query,
  sql: PgSql,
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
  }>(sql.plan, [streams, ids]);
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

  const inserted = await query<{ event_id: string; global_position: string }>(sql.insert, [
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

/** What `translateWriteError` reads the committed state with. */
export interface WriteErrorContext {
  pool: Pool;
  /** The quoted schema. */
  q: string;
  streamRevision(streamName: string): Promise<number>;
}

/** Maps a failed write to the port's errors, reading the committed state when needed. */
export async function translateWriteError(err: unknown, reqs: PreparedRequest[], ctx: WriteErrorContext): Promise<unknown> {
  if (err instanceof WrongExpectedRevisionError || err instanceof DuplicateEventIdError) return err;
  const code = errCode(err);
  if (code === '23505') {
    const constraint = (err as { constraint?: string }).constraint;
    try {
      if (constraint === 'events_event_id_key') {
        const ids = reqs.flatMap((r) => r.events.map((e) => ({ stream: r.streamName, id: e.id })));
        const { rows } = await ctx.pool.query<{ event_id: string }>(
          `SELECT event_id FROM ${ctx.q}.events WHERE event_id = ANY($1::uuid[])`,
          [ids.map((x) => x.id)],
        );
        const hit = ids.find((x) => rows.some((r) => r.event_id === x.id)) ?? ids[0];
        return new DuplicateEventIdError(hit.stream, hit.id);
      }
      // (stream, revision) taken by a concurrent writer: report the stream that moved.
      let fallback: WrongExpectedRevisionError | null = null;
      for (const r of reqs) {
        if (r.events.length === 0) continue;
        const actual = await ctx.streamRevision(r.streamName);
        const e = new WrongExpectedRevisionError(r.streamName, r.expected, actual);
        if (r.expected !== 'any' && (r.expected === 'no_stream' ? actual !== -1 : actual !== r.expected)) return e;
        fallback ??= e;
      }
      if (fallback) return fallback;
    } catch (inner) {
      return translatePgError(inner);
    }
  }
  return translatePgError(err);
}

/** A lost race on a unique key or a serialization failure: plan again. */
export function isRetryableWrite(err: unknown): boolean {
  const code = errCode(err);
  return code === '23505' || (code !== undefined && RETRY_SQLSTATES.has(code));
}
