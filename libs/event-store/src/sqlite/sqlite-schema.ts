/**
 * Schema, row mapping and prepared statements of the SQLite adapter (see sqlite-event-store.ts).
 */
import Database from 'better-sqlite3';
import { ReadAllOptions, StoredEvent, StoredEventJson } from '../port';
import { normaliseReadAll } from '../internal/read-options';

export interface EventRow {
  global_position: bigint;
  stream_name: string;
  revision: bigint;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

/** A row of `readAllJson`: the port's StoredEventJson with its position still a number. */
export type JsonRow = Omit<StoredEventJson, 'globalPosition'> & { globalPosition: number | bigint };

export const SCHEMA = `
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

export const COLUMNS = 'global_position, stream_name, revision, event_id, type, data, metadata, recorded_at';

export function toStored(row: EventRow): StoredEvent {
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

/*
 * Statements that keep their plan (SQLite 3.54.1 as better-sqlite3 13.2 builds it). The planner
 * makes a statement depend on the values bound to it, and then compiles it again on every
 * execution (`sqlite3Reprepare` from `sqlite3_step`, seen with perf), when an ORDER BY or a
 * min()/max() goes with an `=` on a bound parameter, or with `LIMIT ?`. A lookup of a 3-event
 * stream cost 17 to 28 µs instead of 3 to 5 µs. So: `= ? COLLATE BINARY` (the columns' own
 * collation, so the same comparison) and `LIMIT CAST(? AS INTEGER)` (the same limit, negative =
 * none) in every such statement, here and in the SQLite read models (`bench/statements.bench.ts`;
 * test/event-store/sqlite.statement-plans.test.ts checks the SQL of every statement).
 */
/** The filter and order of `readAll` and `readAllJson` (ReadAllOptions, normalised: see `readAllParams`). */
const READ_ALL_FILTER = `WHERE global_position > @after
    AND (@prefix IS NULL OR substr(stream_name, 1, length(@prefix)) = @prefix COLLATE BINARY)
    AND (@types IS NULL OR type IN (SELECT value FROM json_each(@types)))
  ORDER BY global_position
  LIMIT CAST(@limit AS INTEGER)`;

export interface ReadAllParams {
  after: bigint;
  prefix: string | null;
  types: string | null;
  limit: number;
}

/** ReadAllOptions as the parameters of READ_ALL_FILTER. */
export function readAllParams(options?: ReadAllOptions): ReadAllParams {
  const o = normaliseReadAll(options);
  return { after: o.after, prefix: o.streamPrefix, types: o.types ? JSON.stringify(o.types) : null, limit: o.maxCount ?? -1 };
}

/** The statements of one handle, prepared once (see `prepareStatements`). */
export type SqliteStatements = ReturnType<typeof prepareStatements>;

export function prepareStatements(db: Database.Database) {
  const tip = db
    .prepare<[string], { revision: bigint; global_position: bigint }>(
      'SELECT revision, global_position FROM events WHERE stream_name = ? COLLATE BINARY ORDER BY revision DESC LIMIT 1',
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
      `SELECT ${COLUMNS} FROM events WHERE stream_name = ? COLLATE BINARY AND revision >= ? ORDER BY revision LIMIT CAST(? AS INTEGER)`,
    )
    .safeIntegers(true);
  const readAll = db.prepare<ReadAllParams, EventRow>(`SELECT ${COLUMNS} FROM events ${READ_ALL_FILTER}`).safeIntegers(true);
  // readAll's rows as the port's StoredEventJson (column aliases: no row mapping in JS). Integers as
  // numbers (no BigInt per column): `readAllJson` turns each position into a bigint, after checking
  // that the page's highest one is exact.
  const readAllJson = db.prepare<ReadAllParams, JsonRow>(
    `SELECT event_id AS id, stream_name AS streamName, type, data AS dataJson, NULLIF(metadata, '{}') AS metadataJson,
            revision, global_position AS globalPosition
       FROM events ${READ_ALL_FILTER}`,
  );
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
  return { tip, tips, byIds, insert, readStream, readAll, readAllJson, head, eventsByIds, readSnapshot, writeSnapshot, deleteSnapshots };
}

