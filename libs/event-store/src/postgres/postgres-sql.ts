/**
 * SQL text and row mapping of the PostgreSQL adapter (see postgres-event-store.ts): the statements
 * built once per schema, the event row and its conversion to the port's StoredEvent.
 */
import type { QueryResult, QueryResultRow } from 'pg';
import { StoredEvent } from '../port';

/** A query on the pool or on a caller's client (`appendManyInTransaction`). */
export type Query = <R extends QueryResultRow>(text: string, values: unknown[]) => Promise<QueryResult<R>>;

export interface EventRow {
  global_position: string;
  stream_name: string;
  revision: string;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recorded_at: Date;
}

export function toStored(r: EventRow): StoredEvent {
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

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const COLUMNS = 'global_position, stream_name, revision, event_id, type, data, metadata, recorded_at';

export type PgSql = ReturnType<typeof buildSql>;

export function buildSql(s: string) {
  // The window of readAllWindow and readAllJsonWindow (see there): the head joined to the rows of
  // ($1, $1 + $4], each flagged `hit` by the filter ($2 stream prefix, $3 types).
  const windowOf = `FROM (SELECT max(global_position) AS head FROM ${s}.events) AS h
        LEFT JOIN LATERAL (
          SELECT e.*, (($2::text IS NULL OR starts_with(e.stream_name, $2::text)) AND ($3::text[] IS NULL OR e.type = ANY($3::text[]))) AS hit
            FROM ${s}.events e
           WHERE e.global_position > $1::bigint AND e.global_position <= $1::bigint + $4::bigint) AS w ON TRUE
       ORDER BY w.global_position`;
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
    // $all in position order, by windows of positions: ($1, $1 + $4], each row flagged `hit` when
    // it passes the filter (a stream prefix, types; none: every row), its data and metadata sent
    // only then, and the head read in the same snapshot (an empty window is one row: the head,
    // the rest null); readAll walks the windows until its page is full or the head is reached
    // (postgres-reads.ts). A range bounded on both sides is planned
    // as an ordered scan of the primary key with or without statistics. With the filter and a
    // LIMIT instead, a fresh table (no statistics) estimated starts_with at 0.5 % of the rows and
    // sorted every event after the checkpoint for each page (a catch-up over 100,000 events:
    // 300 ms a page against 3 ms), and with statistics a types filter was planned as a
    // sequential scan of the whole table for each page.
    readAllWindow: `
      SELECT w.global_position, w.stream_name, w.revision, w.event_id, w.type, w.recorded_at, w.hit,
             CASE WHEN w.hit THEN w.data END AS data, CASE WHEN w.hit THEN w.metadata END AS metadata, h.head
        ${windowOf}`,
    // readAllWindow's rows with data and metadata as their stored JSON text (columns of type json keep it verbatim).
    readAllJsonWindow: `
      SELECT w.event_id::text AS id, w.stream_name, w.type, w.revision, w.global_position, w.hit,
             CASE WHEN w.hit THEN w.data::text END AS data, CASE WHEN w.hit THEN NULLIF(w.metadata::text, '{}') END AS metadata, h.head
        ${windowOf}`,
    head: `SELECT max(global_position)::text AS head FROM ${s}.events`,
  };
}
