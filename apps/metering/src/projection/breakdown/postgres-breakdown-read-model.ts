/**
 * The breakdown read model in PostgreSQL: same rows as the SQLite one, field for field. Its tables
 * come from its own migrations, recorded in `<schema>.rm_breakdown_migrations` and applied under a
 * transaction-scoped advisory lock (several instances may start at once). Text keys are ordered
 * with `COLLATE "C"` in dumps, as SQLite orders them.
 */
import type { Pool, PoolClient } from 'pg';
import { type Migration, type StoredEvent, applyMigrations } from '@metering/event-store';
import { BREAKDOWN_CHECKPOINT, BreakdownBatch, type BreakdownDump, type BreakdownReadModel, type BreakdownRow, type WatchRow, byUse, watchRuns } from './breakdown';
import { toBreakdownRow, toWatchRow } from './sqlite-breakdown-read-model';

/** Never edit an applied migration: add a new one. */
export const BREAKDOWN_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'usage breakdown by member and feature, threshold watch, checkpoint',
    sql: (s) => `
      CREATE TABLE ${s}.rm_breakdown_checkpoint (
        name     TEXT   PRIMARY KEY,
        position BIGINT NOT NULL
      );
      CREATE TABLE ${s}.rm_breakdown (
        space_id         TEXT    NOT NULL,
        period_start     BIGINT  NOT NULL,
        user_id          TEXT    NOT NULL,
        feature          TEXT    NOT NULL,
        ai_image_credits BIGINT  NOT NULL,
        ai_video_credits BIGINT  NOT NULL,
        batch_exports    BIGINT  NOT NULL,
        events           INTEGER NOT NULL,
        PRIMARY KEY (space_id, period_start, user_id, feature)
      );
      CREATE TABLE ${s}.rm_breakdown_watch (
        space_id     TEXT    NOT NULL,
        pool         TEXT    NOT NULL,
        threshold    INTEGER NOT NULL,
        period_start BIGINT  NOT NULL,
        state        TEXT    NOT NULL CHECK (state IN ('fired', 'rearmed')),
        used         BIGINT  NOT NULL,
        limit_       BIGINT  NOT NULL,
        position     BIGINT  NOT NULL,
        recorded_at  TEXT    NOT NULL,
        PRIMARY KEY (space_id, pool, threshold)
      );
      CREATE INDEX rm_breakdown_watch_fired ON ${s}.rm_breakdown_watch (threshold DESC, position DESC) WHERE state = 'fired';
    `,
  },
];

export class PostgresBreakdownReadModel implements BreakdownReadModel {
  private readonly q: string;

  /** `pool` is not closed by `close()` (it is the balance read model's or the store's). */
  constructor(private readonly pool: Pool, readonly schema = 'metering') {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema "${schema}": must be a lower-case SQL identifier`);
    this.q = `"${schema}"`;
  }

  async init(): Promise<void> {
    await this.transaction((c) =>
      applyMigrations(c, { quotedSchema: this.q, table: 'rm_breakdown_migrations', lockKey: `${this.schema}:rm_breakdown`, migrations: BREAKDOWN_MIGRATIONS }),
    );
  }

  async checkpoint(): Promise<bigint> {
    const { rows } = await this.pool.query<{ position: string }>(`SELECT position::text AS position FROM ${this.q}.rm_breakdown_checkpoint WHERE name = $1`, [BREAKDOWN_CHECKPOINT]);
    return rows.length ? BigInt(rows[0].position) : 0n;
  }

  async apply(events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    const q = this.q;
    await this.transaction(async (c) => {
      // Lock the checkpoint row: two projectors applying the same page serialize here and the second skips it.
      await c.query(`INSERT INTO ${q}.rm_breakdown_checkpoint (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, [BREAKDOWN_CHECKPOINT]);
      const { rows } = await c.query<{ position: string }>(`SELECT position::text AS position FROM ${q}.rm_breakdown_checkpoint WHERE name = $1 FOR UPDATE`, [BREAKDOWN_CHECKPOINT]);
      const from = BigInt(rows[0].position);
      const batch = new BreakdownBatch(from);
      for (const e of events) batch.add(e);
      if (batch.position === from) return;
      if (batch.cleared.length)
        await c.query(
          `DELETE FROM ${q}.rm_breakdown AS b USING unnest($1::text[], $2::bigint[]) AS r(space_id, period_start)
            WHERE b.space_id = r.space_id AND b.period_start = r.period_start`,
          [batch.cleared.map((r) => r.spaceId), batch.cleared.map((r) => r.periodStart)],
        );
      const sums = [...batch.sums.values()];
      if (sums.length)
        await c.query(
          `INSERT INTO ${q}.rm_breakdown (space_id, period_start, user_id, feature, ai_image_credits, ai_video_credits, batch_exports, events)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::int[])
           ON CONFLICT (space_id, period_start, user_id, feature) DO UPDATE SET
             ai_image_credits = rm_breakdown.ai_image_credits + excluded.ai_image_credits,
             ai_video_credits = rm_breakdown.ai_video_credits + excluded.ai_video_credits,
             batch_exports = rm_breakdown.batch_exports + excluded.batch_exports,
             events = rm_breakdown.events + excluded.events`,
          [
            sums.map((r) => r.spaceId),
            sums.map((r) => r.periodStart),
            sums.map((r) => r.userId),
            sums.map((r) => r.feature),
            sums.map((r) => r.used.ai_image_credits),
            sums.map((r) => r.used.ai_video_credits),
            sums.map((r) => r.used.batch_exports),
            sums.map((r) => r.events),
          ],
        );
      // A member move took usage out of these rows: one left with no usage event goes away.
      const emptied = batch.emptied();
      if (emptied.length)
        await c.query(
          `DELETE FROM ${q}.rm_breakdown AS b USING unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS r(space_id, period_start, user_id, feature)
           WHERE b.space_id = r.space_id AND b.period_start = r.period_start AND b.user_id = r.user_id AND b.feature = r.feature AND b.events <= 0`,
          [emptied.map((r) => r.spaceId), emptied.map((r) => r.periodStart), emptied.map((r) => r.userId), emptied.map((r) => r.feature)],
        );
      // One statement per run of watch changes (not one per change): see watchRuns.
      for (const run of watchRuns(batch.watch)) {
        if (run.kind !== 'set')
          await c.query(
            `DELETE FROM ${q}.rm_breakdown_watch AS w USING unnest($1::text[], $2::bigint[]) AS r(space_id, period_start)
              WHERE w.space_id = r.space_id AND ${run.kind === 'reset' ? 'w.period_start < r.period_start' : 'w.period_start = r.period_start'}`,
            [run.resets.map((r) => r.spaceId), run.resets.map((r) => r.periodStart)],
          );
        else {
          const w = run.rows;
          await c.query(
            `INSERT INTO ${q}.rm_breakdown_watch (space_id, pool, threshold, period_start, state, used, limit_, position, recorded_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[])
             ON CONFLICT (space_id, pool, threshold) DO UPDATE SET period_start = excluded.period_start, state = excluded.state,
               used = excluded.used, limit_ = excluded.limit_, position = excluded.position, recorded_at = excluded.recorded_at
             WHERE excluded.period_start >= rm_breakdown_watch.period_start`,
            [
              w.map((r) => r.spaceId),
              w.map((r) => r.pool),
              w.map((r) => r.threshold),
              w.map((r) => r.periodStart),
              w.map((r) => r.state),
              w.map((r) => r.used),
              w.map((r) => r.limit),
              w.map((r) => r.position),
              w.map((r) => r.recordedAt),
            ],
          );
        }
      }
      await c.query(`UPDATE ${q}.rm_breakdown_checkpoint SET position = $2 WHERE name = $1`, [BREAKDOWN_CHECKPOINT, batch.position.toString()]);
    });
  }

  async forPeriod(spaceId: string, periodStart: number): Promise<BreakdownRow[]> {
    const { rows } = await this.pool.query(`SELECT * FROM ${this.q}.rm_breakdown WHERE space_id = $1 AND period_start = $2`, [spaceId, periodStart]);
    return rows.map(toBreakdownRow).sort(byUse);
  }

  async watchList(limit: number): Promise<WatchRow[]> {
    const { rows } = await this.pool.query(
      `SELECT space_id, pool, threshold, period_start, state, used, limit_, position::text AS position, recorded_at
       FROM ${this.q}.rm_breakdown_watch WHERE state = 'fired' ORDER BY threshold DESC, position DESC LIMIT $1`,
      [limit],
    );
    return rows.map(toWatchRow);
  }

  async clear(): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.q}.rm_breakdown; DELETE FROM ${this.q}.rm_breakdown_watch; DELETE FROM ${this.q}.rm_breakdown_checkpoint;`);
  }

  async dump(): Promise<BreakdownDump> {
    const q = this.q;
    const rows = await this.pool.query(`SELECT * FROM ${q}.rm_breakdown ORDER BY space_id COLLATE "C", period_start, user_id COLLATE "C", feature COLLATE "C"`);
    const watch = await this.pool.query(
      `SELECT space_id, pool, threshold, period_start, state, used, limit_, position::text AS position, recorded_at
       FROM ${q}.rm_breakdown_watch ORDER BY space_id COLLATE "C", pool COLLATE "C", threshold`,
    );
    return { rows: rows.rows.map(toBreakdownRow), watch: watch.rows.map(toWatchRow) };
  }

  async close(): Promise<void> {
    /* the pool belongs to the balance read model or the store */
  }

  private async transaction<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      const out = await work(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      c.release(broken);
    }
  }
}
