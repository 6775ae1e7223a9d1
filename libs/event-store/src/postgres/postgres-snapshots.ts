/**
 * Snapshots and cold starts of the PostgreSQL adapter (see postgres-event-store.ts): a stream's
 * snapshot, the snapshot and tail of many streams in two queries, writing (never backwards) and
 * deleting snapshots.
 */
import { ColdStart, Snapshot } from '../port';
import { checkSnapshot } from '../internal/read-options';
import { PgReadContext } from './postgres-reads';
import { COLUMNS, EventRow, toStored } from './postgres-sql';

export async function readSnapshot(ctx: PgReadContext, streamName: string): Promise<Snapshot | null> {
  const { rows } = await ctx.query<{ revision: string; schema: number; data: string }>(
    `SELECT revision::text AS revision, schema, data FROM ${ctx.q}.snapshots WHERE stream_name = $1`,
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
export async function readColdStarts(ctx: PgReadContext, streamNames: string[], maxCount: number): Promise<Map<string, ColdStart>> {
  if (!Number.isSafeInteger(maxCount) || maxCount < 1) throw new TypeError('maxCount must be a positive integer');
  const names = [...new Set(streamNames)];
  const out = new Map<string, ColdStart>();
  if (names.length === 0) return out;
  const snaps = await ctx.query<{ stream_name: string; revision: string; schema: number; data: string }>(
    `SELECT stream_name, revision::text AS revision, schema, data FROM ${ctx.q}.snapshots WHERE stream_name = ANY($1::text[])`,
    [names],
  );
  const snapshots = new Map<string, Snapshot>();
  for (const r of snaps.rows) snapshots.set(r.stream_name, { streamName: r.stream_name, revision: Number(r.revision), schema: r.schema, data: r.data });
  for (const n of names) out.set(n, { snapshot: snapshots.get(n) ?? null, events: [] });
  const { rows } = await ctx.query<EventRow>(
    `SELECT e.* FROM unnest($1::text[], $2::bigint[]) AS r(name, from_revision)
       CROSS JOIN LATERAL (
         SELECT ${COLUMNS} FROM ${ctx.q}.events
          WHERE stream_name = r.name AND revision >= r.from_revision
          ORDER BY revision LIMIT $3) AS e`,
    [names, names.map((n) => (snapshots.has(n) ? (snapshots.get(n) as Snapshot).revision + 1 : 0)), maxCount],
  );
  for (const r of rows) (out.get(r.stream_name) as ColdStart).events.push(toStored(r));
  // LATERAL rows come stream by stream in revision order; sorted again in case a plan interleaves them.
  for (const c of out.values()) if (c.events.length > 1) c.events.sort((a, b) => a.revision - b.revision);
  return out;
}

export async function writeSnapshot(ctx: PgReadContext, snapshot: Snapshot): Promise<void> {
  checkSnapshot(snapshot);
  await ctx.query(
    `INSERT INTO ${ctx.q}.snapshots (stream_name, revision, schema, data) VALUES ($1, $2, $3, $4)
     ON CONFLICT (stream_name) DO UPDATE SET revision = EXCLUDED.revision, schema = EXCLUDED.schema, data = EXCLUDED.data,
       written_at = now()
     WHERE EXCLUDED.revision > ${ctx.q}.snapshots.revision`,
    [snapshot.streamName, snapshot.revision, snapshot.schema, snapshot.data],
  );
}

export async function deleteSnapshots(ctx: PgReadContext): Promise<number> {
  const r = await ctx.query(`DELETE FROM ${ctx.q}.snapshots`, []);
  return r.rowCount ?? 0;
}
