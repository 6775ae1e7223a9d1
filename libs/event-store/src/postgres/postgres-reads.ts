/**
 * Reads of the PostgreSQL adapter (see postgres-event-store.ts): a stream, $all from an exclusive
 * position, the head and positions, the store's identity and events by id. Every query goes
 * through the store's `query` (open check and error translation).
 */
import { ReadAllOptions, ReadStreamOptions, StoredEvent, StoredEventJson } from '../port';
import { normaliseReadAll, normaliseReadStream } from '../internal/read-options';
import { COLUMNS, EventRow, PgSql, Query, UUID_RE, toStored } from './postgres-sql';

/** What the reads (and the snapshots, postgres-snapshots.ts) run on. */
export interface PgReadContext {
  query: Query;
  /** The schema, and its quoted form for the SQL text. */
  schema: string;
  q: string;
  sql: PgSql;
  /** Positions a read of $all covers per query, at least (SCAN_WINDOW). */
  scanWindow: number;
}
export async function readStream(ctx: PgReadContext, streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
  const { fromRevision, maxCount } = normaliseReadStream(options);
  const { rows } = await ctx.query<EventRow>(ctx.sql.readStream, [streamName, fromRevision, maxCount]);
  return rows.map(toStored);
}

export async function streamRevision(ctx: PgReadContext, streamName: string): Promise<number> {
  const { rows } = await ctx.query<{ revision: string }>(ctx.sql.tip, [streamName]);
  return rows.length ? Number(rows[0].revision) : -1;
}

/** Positions covered per query by a read of $all, at least (see buildSql's readAllWindow). */
export const SCAN_WINDOW = 10_000;

type JsonRow = { id: string; stream_name: string; type: string; data: string; metadata: string | null; revision: string; global_position: string };

/**
 * $all after a position, in windows of positions (see buildSql's readAllWindow) until the page is
 * full or the window reaches the head. Each window is its own snapshot, and a snapshot that sees
 * a position sees every lower one (see the store's header comment), so the windows join into what
 * one query would have returned. Positions are dense here: an unfiltered page is one query.
 */
async function readAllRows<R extends { global_position: string }>(ctx: PgReadContext, options: ReadAllOptions | undefined, windowed: string): Promise<R[]> {
  const o = normaliseReadAll(options);
  if (o.maxCount === 0) return [];
  const want = o.maxCount ?? Number.POSITIVE_INFINITY;
  const window = BigInt(Math.max(ctx.scanWindow, o.maxCount ?? 0));
  const out: R[] = [];
  let after = o.after;
  for (;;) {
    const { rows } = await ctx.query<R & { hit: boolean; head: string | null }>(windowed, [after.toString(), o.streamPrefix, o.types, window.toString()]);
    for (const r of rows) {
      if (!r.hit) continue;
      out.push(r);
      if (out.length >= want) return out;
    }
    // Every answer has a row (an empty window's holds the head alone, hit null); no event: head null.
    const head = rows.length > 0 && rows[0].head !== null ? BigInt(rows[0].head) : 0n;
    after += window;
    if (after >= head) return out;
  }
}

export async function readAll(ctx: PgReadContext, options?: ReadAllOptions): Promise<StoredEvent[]> {
  return (await readAllRows<EventRow>(ctx, options, ctx.sql.readAllWindow)).map(toStored);
}

export async function readAllJson(ctx: PgReadContext, options?: ReadAllOptions): Promise<StoredEventJson[]> {
  const rows = await readAllRows<JsonRow>(ctx, options, ctx.sql.readAllJsonWindow);
  return rows.map((r) => ({
    id: r.id,
    streamName: r.stream_name,
    type: r.type,
    dataJson: r.data,
    metadataJson: r.metadata,
    revision: Number(r.revision),
    globalPosition: BigInt(r.global_position),
  }));
}

export async function headPosition(ctx: PgReadContext): Promise<bigint> {
  const { rows } = await ctx.query<{ head: string | null }>(ctx.sql.head, []);
  return rows[0]?.head ? BigInt(rows[0].head) : 0n;
}

export async function hasPosition(ctx: PgReadContext, position: bigint): Promise<boolean> {
  if (typeof position !== 'bigint' || position < 0n) return false;
  if (position === 0n) return true;
  const { rows } = await ctx.query(`SELECT 1 FROM ${ctx.q}.events WHERE global_position = $1`, [position.toString()]);
  return rows.length > 0;
}

export async function storeId(ctx: PgReadContext): Promise<string> {
  const { rows } = await ctx.query<{ store_id: string }>(`SELECT store_id FROM ${ctx.q}.store_identity`, []);
  if (!rows[0]) throw new Error(`PostgreSQL schema ${ctx.schema} has no store identity (run the migrations)`);
  return rows[0].store_id;
}

export async function readEventsById(ctx: PgReadContext, ids: string[]): Promise<StoredEvent[]> {
  const uuids = ids.map((i) => i.toLowerCase()).filter((i) => UUID_RE.test(i));
  if (uuids.length === 0) return [];
  const { rows } = await ctx.query<EventRow>(`SELECT ${COLUMNS} FROM ${ctx.q}.events WHERE event_id = ANY($1::uuid[])`, [uuids]);
  return rows.map(toStored);
}
