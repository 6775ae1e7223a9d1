/**
 * The balance read model in PostgreSQL (by default in the same schema as the PostgreSQL event
 * store's tables, on the store's pool).
 *
 * Same semantics as the SQLite read model, field for field: each `apply` runs in ONE transaction
 * that locks the checkpoint row, loads every row the batch can touch, lets `applyEvent`
 * (apply-events.ts) decide the new values in memory through `RowAccess`, writes the touched rows
 * back and moves the checkpoint. Events at or before the checkpoint are skipped, so a page applied
 * twice (a projector restart, two projectors at once) changes nothing.
 *
 * Tables are created by this file's own migrations (the event store's migration list is a fixed
 * constant of the library), recorded in `<schema>.read_model_migrations` and applied under a
 * transaction-scoped advisory lock, so several instances may start at once.
 *
 * Canonical order: text keys are ordered with `COLLATE "C"` (byte order), which is SQLite's
 * default BINARY order for UTF-8 text, so both `dump()`s list rows in the same order whatever
 * the database's collation.
 */
import type { Pool, PoolClient, PoolConfig } from 'pg';
import type { Limits } from '@metering/domain';
import { emptyLimits, spaceIdOfStored } from '@metering/domain';
import { type Migration, type StoredEvent, applyMigrations, pgConnection } from '@metering/event-store';
import type { BalanceReadModel, ReadModelDump, SpaceRow, ThresholdRow, UsageRow } from './balance-read-model';
import { BatchRows, spaceRowNeeded, usagePeriodRead, applyEvent } from './apply-events';

const CHECKPOINT = 'balances';

/** Never edit an applied migration: add a new one. */
export const READ_MODEL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'balance read model: spaces, usage, usage items, thresholds, checkpoint',
    sql: (s) => `
      CREATE TABLE ${s}.rm_checkpoints (
        name     TEXT   PRIMARY KEY,
        position BIGINT NOT NULL
      );
      CREATE TABLE ${s}.rm_spaces (
        space_id      TEXT    PRIMARY KEY,
        timeline      JSON    NOT NULL,
        last_reset_at BIGINT,
        next_reset_at BIGINT,
        revision      BIGINT  NOT NULL
      );
      CREATE INDEX rm_spaces_next_reset ON ${s}.rm_spaces (next_reset_at) WHERE next_reset_at IS NOT NULL;
      CREATE TABLE ${s}.rm_usage (
        space_id         TEXT    NOT NULL,
        period_start     BIGINT  NOT NULL,
        period_end       BIGINT,
        ai_image_credits BIGINT  NOT NULL,
        ai_video_credits BIGINT  NOT NULL,
        batch_exports    BIGINT  NOT NULL,
        usage_events     INTEGER NOT NULL,
        PRIMARY KEY (space_id, period_start)
      );
      CREATE TABLE ${s}.rm_usage_items (
        space_id    TEXT   NOT NULL,
        position    BIGINT NOT NULL,
        occurred_at BIGINT NOT NULL,
        pool        TEXT   NOT NULL,
        amount      BIGINT NOT NULL,
        PRIMARY KEY (space_id, position)
      );
      CREATE TABLE ${s}.rm_thresholds (
        space_id     TEXT    NOT NULL,
        period_start BIGINT  NOT NULL,
        pool         TEXT    NOT NULL,
        threshold    INTEGER NOT NULL,
        state        TEXT    NOT NULL CHECK (state IN ('fired', 'rearmed')),
        event_id     TEXT    NOT NULL,
        PRIMARY KEY (space_id, period_start, pool, threshold)
      );
    `,
  },
  {
    version: 2,
    name: 'usage moves are recorded in SubscriptionChanged: one row per use is no longer kept',
    sql: (s) => `DROP TABLE IF EXISTS ${s}.rm_usage_items;`,
  },
  {
    version: 3,
    name: 'room on each page for updated rows: HOT updates of revisions and usage sums',
    // Every usage event rewrites its Space's revision and its period's sums, neither indexed: with
    // free room on the row's page the new version stays there (a HOT update, no index entry).
    // Applies to pages written from now on (an existing table's full pages fill as they are rewritten).
    sql: (s) => `ALTER TABLE ${s}.rm_spaces SET (fillfactor = 70); ALTER TABLE ${s}.rm_usage SET (fillfactor = 70);`,
  },
];

export interface PostgresBalanceReadModelOptions {
  /** An existing pool, e.g. the PostgreSQL event store's `pool` (not closed by `close()`). */
  pool?: Pool;
  /** Connection string for a pool of its own (closed by `close()`); ignored when `pool` is given. */
  url?: string;
  poolConfig?: PoolConfig;
  /** Schema of the tables. Default `metering` (the event store's default). */
  schema?: string;
}

type Num = string | number;
interface SpaceDb { space_id: string; timeline: SpaceRow['timeline']; last_reset_at: Num | null; next_reset_at: Num | null; revision: Num }
interface UsageDb { space_id: string; period_start: Num; period_end: Num | null; ai_image_credits: Num; ai_video_credits: Num; batch_exports: Num; usage_events: Num }
interface ThresholdDb { space_id: string; period_start: Num; pool: string; threshold: Num; state: 'fired' | 'rearmed'; event_id: string }

// BIGINT comes back as text from `pg`: epoch ms and amounts are converted to JS numbers, as SQLite returns them.
const num = (v: Num): number => Number(v);
const numOrNull = (v: Num | null): number | null => (v === null ? null : Number(v));

const toSpace = (r: SpaceDb): SpaceRow => ({
  spaceId: r.space_id,
  // A JSON column is parsed by `pg`; a string (e.g. a type parser override) is parsed here.
  timeline: typeof r.timeline === 'string' ? JSON.parse(r.timeline) : r.timeline,
  lastResetAt: numOrNull(r.last_reset_at),
  nextResetAt: numOrNull(r.next_reset_at),
  revision: num(r.revision),
});
const toUsage = (r: UsageDb): UsageRow => ({
  spaceId: r.space_id,
  periodStart: num(r.period_start),
  periodEnd: numOrNull(r.period_end),
  used: { ai_image_credits: num(r.ai_image_credits), ai_video_credits: num(r.ai_video_credits), batch_exports: num(r.batch_exports) },
  usageEvents: num(r.usage_events),
});
const toThreshold = (r: ThresholdDb): ThresholdRow => ({
  spaceId: r.space_id, periodStart: num(r.period_start), pool: r.pool, threshold: num(r.threshold), state: r.state, eventId: r.event_id,
});

const cloneSpace = (r: SpaceRow): SpaceRow => ({ ...r, timeline: r.timeline.map((s) => ({ ...s, limits: { ...s.limits } })) });
const cloneUsage = (r: UsageRow): UsageRow => ({ ...r, used: { ...r.used } });

/** The Space an event's rows belong to, exactly as `applyEvent` derives it (null: not a Space event). */
function spaceIdOf(e: StoredEvent): string | null {
  if (!e.streamName.startsWith('space-')) return null;
  return spaceIdOfStored(e);
}

export class PostgresBalanceReadModel implements BalanceReadModel {
  readonly pool: Pool;
  readonly schema: string;
  private readonly ownsPool: boolean;
  private readonly sql: ReturnType<typeof buildSql>;
  private readonly q: string;
  /**
   * What the last `apply` loaded ahead: Space rows, usage rows, and how many times it folded the
   * batch (2: a row it had not loaded was asked for). For tests and diagnostics.
   */
  loads = { spaceRows: 0, usageRows: 0, folds: 0 };

  constructor(options: PostgresBalanceReadModelOptions) {
    const c = pgConnection(options, 'PostgresBalanceReadModel');
    [this.schema, this.q, this.pool, this.ownsPool] = [c.schema, c.quoted, c.pool, c.ownsPool];
    this.sql = buildSql(this.q);
  }

  /** Creates the schema and applies pending migrations; safe when several instances start at once. */
  async init(): Promise<void> {
    await this.transaction((client) =>
      applyMigrations(client, {
        quotedSchema: this.q,
        table: 'read_model_migrations',
        lockKey: `metering/read-model/migrate/${this.schema}`,
        migrations: READ_MODEL_MIGRATIONS,
      }),
    );
  }

  async checkpoint(): Promise<bigint> {
    const { rows } = await this.pool.query<{ position: string }>(this.sql.checkpoint, [CHECKPOINT]);
    return rows.length ? BigInt(rows[0].position) : 0n;
  }

  async apply(events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.transaction(async (client) => {
      // The checkpoint row lock serialises appliers (SQLite: BEGIN IMMEDIATE). READ COMMITTED: every
      // statement after it sees what the previous holder committed.
      await client.query(this.sql.ensureCheckpoint, [CHECKPOINT]);
      const cp = await client.query<{ position: string }>(this.sql.lockCheckpoint, [CHECKPOINT]);
      const start = BigInt(cp.rows[0].position);
      const batch = events.filter((e) => e.globalPosition > start);
      if (batch.length === 0) return;

      // Load every row the batch can read: the Space rows of the Spaces whose fold reads them
      // (spaceRowNeeded: a page of uses on known Spaces reads none) with every usage row of those
      // Spaces, and for the other Spaces only the usage rows of the periods their uses recorded
      // (usagePeriodRead): the rows read do not grow with a Space's past periods. A fold that asks
      // for a row not loaded (it should not) is folded again with every row of that Space loaded.
      const needed = new Set<string>();
      const periods = new Map<string, Set<number>>();
      for (const e of batch) {
        const id = spaceIdOf(e);
        if (id === null) continue;
        if (spaceRowNeeded(e)) needed.add(id);
        const periodStart = usagePeriodRead(e);
        if (periodStart === null) continue;
        const set = periods.get(id);
        if (set) set.add(periodStart);
        else periods.set(id, new Set([periodStart]));
      }
      const allUsage = new Set<string>();
      const loadedSpaces = new Map<string, SpaceRow>();
      const loadedUsage = new Map<string, UsageRow>();
      const keepUsage = (rows: UsageDb[]) => {
        for (const r of rows) {
          const u = toUsage(r);
          loadedUsage.set(`${u.spaceId}|${u.periodStart}`, u);
        }
      };
      const loadSpaces = async (ids: string[]) => {
        if (ids.length === 0) return;
        for (const r of (await client.query<SpaceDb>(this.sql.spacesIn, [ids])).rows) loadedSpaces.set(r.space_id, toSpace(r));
        for (const id of ids) allUsage.add(id);
        keepUsage((await client.query<UsageDb>(this.sql.usageIn, [ids])).rows);
      };
      await loadSpaces([...needed]);
      const pairIds: string[] = [];
      const pairStarts: number[] = [];
      for (const [id, starts] of periods) {
        if (needed.has(id)) continue;
        for (const periodStart of starts) {
          pairIds.push(id);
          pairStarts.push(periodStart);
        }
      }
      if (pairIds.length) keepUsage((await client.query<UsageDb>(this.sql.usagePairs, [pairIds, pairStarts])).rows);
      this.loads = { spaceRows: loadedSpaces.size, usageRows: loadedUsage.size, folds: 0 };

      // The batch's bookkeeping is shared with SQLite; rows are written only after the fold.
      let rows: BatchRows;
      let position = start;
      for (;;) {
        const missing = new Set<string>();
        rows = new BatchRows({
          space: (id) => {
            if (!needed.has(id)) missing.add(id);
            const r = loadedSpaces.get(id);
            return r ? cloneSpace(r) : null;
          },
          usage: (id, periodStart) => {
            if (!allUsage.has(id) && !periods.get(id)?.has(periodStart)) missing.add(id);
            const r = loadedUsage.get(`${id}|${periodStart}`);
            return r ? cloneUsage(r) : null;
          },
        });
        position = start;
        for (const e of batch) {
          applyEvent(rows, e);
          position = e.globalPosition;
        }
        this.loads.folds++;
        if (missing.size === 0) break;
        for (const id of missing) needed.add(id);
        await loadSpaces([...missing]);
        this.loads.spaceRows = loadedSpaces.size;
        this.loads.usageRows = loadedUsage.size;
      }

      const { thresholds } = rows;
      const usage = rows.usageChanges();
      // Its StoredRows reads every usage row a use adds to (no `additive`): whole rows only.
      if (usage.added.length) throw new Error('read model: additive usage rows on PostgreSQL');
      if (usage.deleted.length)
        await client.query(this.sql.deleteUsage, [usage.deleted.map((d) => d.spaceId), usage.deleted.map((d) => d.periodStart)]);
      const spaces = rows.spaceChanges();
      if (spaces.full.length) {
        const list = spaces.full;
        await client.query(this.sql.putSpaces, [
          list.map((s) => s.spaceId),
          list.map((s) => JSON.stringify(s.timeline)),
          list.map((s) => s.lastResetAt),
          list.map((s) => s.nextResetAt),
          list.map((s) => s.revision),
        ]);
      }
      if (spaces.revisionOnly.length) {
        // Only the revision changed (usage): no timeline sent or re-parsed, no indexed column
        // changed, so the new row versions can be HOT (see the fillfactor migration).
        const list = spaces.revisionOnly;
        const r = await client.query(this.sql.putRevisions, [list.map((s) => s.spaceId), list.map((s) => s.revision)]);
        if (r.rowCount !== list.length) throw new Error(`read model: ${list.length - (r.rowCount ?? 0)} Space rows went away during the batch`);
      }
      if (usage.put.length) {
        const list = usage.put;
        await client.query(this.sql.putUsage, [
          list.map((u) => u.spaceId),
          list.map((u) => u.periodStart),
          list.map((u) => u.periodEnd),
          list.map((u) => u.used.ai_image_credits),
          list.map((u) => u.used.ai_video_credits),
          list.map((u) => u.used.batch_exports),
          list.map((u) => u.usageEvents),
        ]);
      }
      const cleared = rows.clearedThresholds;
      if (cleared.length) await client.query(this.sql.deleteThresholds, [cleared.map((c) => c.spaceId), cleared.map((c) => c.periodStart)]);
      if (thresholds.size) {
        const list = [...thresholds.values()];
        await client.query(this.sql.putThresholds, [
          list.map((t) => t.spaceId),
          list.map((t) => t.periodStart),
          list.map((t) => t.pool),
          list.map((t) => t.threshold),
          list.map((t) => t.state),
          list.map((t) => t.eventId),
        ]);
      }
      await client.query(this.sql.setCheckpoint, [CHECKPOINT, position.toString()]);
    });
  }

  async getSpace(spaceId: string): Promise<SpaceRow | null> {
    const { rows } = await this.pool.query<SpaceDb>(this.sql.spacesIn, [[spaceId]]);
    return rows.length ? toSpace(rows[0]) : null;
  }

  async usedIn(spaceId: string, periodStart: number): Promise<Limits> {
    const { rows } = await this.pool.query<UsageDb>(`SELECT * FROM ${this.q}.rm_usage WHERE space_id = $1 AND period_start = $2`, [spaceId, periodStart]);
    return rows.length ? toUsage(rows[0]).used : emptyLimits();
  }

  async spaceForView(spaceId: string): Promise<{ space: SpaceRow | null; usage: UsageRow[] }> {
    // One statement, so one snapshot: the Space row and its usage rows agree.
    const { rows } = await this.pool.query<SpaceDb & { usage: [Num, Num | null, Num, Num, Num, Num][] }>(this.sql.spaceForView, [spaceId]);
    if (!rows.length) return { space: null, usage: [] };
    const r = rows[0];
    return {
      space: toSpace(r),
      usage: (r.usage ?? []).map(([start, end, image, video, batch, events]) => ({
        spaceId,
        periodStart: num(start),
        periodEnd: numOrNull(end),
        used: { ai_image_credits: num(image), ai_video_credits: num(video), batch_exports: num(batch) },
        usageEvents: num(events),
      })),
    };
  }

  async usage(spaceId: string): Promise<UsageRow[]> {
    const { rows } = await this.pool.query<UsageDb>(`SELECT * FROM ${this.q}.rm_usage WHERE space_id = $1 ORDER BY period_start`, [spaceId]);
    return rows.map(toUsage);
  }

  async spaceIdsAfter(after: string, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ space_id: string }>(
      `SELECT space_id FROM ${this.q}.rm_spaces WHERE space_id COLLATE "C" > $1 ORDER BY space_id COLLATE "C" LIMIT $2`,
      [after, limit],
    );
    return rows.map((r) => r.space_id);
  }

  async dueForReset(now: number, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ space_id: string }>(
      `SELECT space_id FROM ${this.q}.rm_spaces WHERE next_reset_at IS NOT NULL AND next_reset_at <= $1
        ORDER BY next_reset_at, space_id COLLATE "C" LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => r.space_id);
  }

  /** Drops every row and the checkpoint (other readers' positions stay). TRUNCATE waits for a running `apply`. */
  async clear(): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(`TRUNCATE ${this.q}.rm_spaces, ${this.q}.rm_usage, ${this.q}.rm_thresholds`);
      await client.query(`DELETE FROM ${this.q}.rm_checkpoints WHERE name NOT LIKE 'pos:%'`);
    });
  }

  async getPosition(name: string): Promise<bigint> {
    const { rows } = await this.pool.query<{ position: string }>(`SELECT position::text AS position FROM ${this.q}.rm_checkpoints WHERE name = $1`, [`pos:${name}`]);
    return rows[0] ? BigInt(rows[0].position) : 0n;
  }

  async setPosition(name: string, position: bigint): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.q}.rm_checkpoints (name, position) VALUES ($1, $2::bigint) ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position`,
      [`pos:${name}`, position.toString()],
    );
  }

  async advancePosition(name: string, position: bigint): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.q}.rm_checkpoints AS c (name, position) VALUES ($1, $2::bigint) ON CONFLICT (name) DO UPDATE SET position = GREATEST(c.position, EXCLUDED.position)`,
      [`pos:${name}`, position.toString()],
    );
  }

  async dump(): Promise<ReadModelDump> {
    // One snapshot for the three reads.
    return this.transaction(async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const spaces = await client.query<SpaceDb>(`SELECT * FROM ${this.q}.rm_spaces ORDER BY space_id COLLATE "C"`);
      const usage = await client.query<UsageDb>(`SELECT * FROM ${this.q}.rm_usage ORDER BY space_id COLLATE "C", period_start`);
      const thresholds = await client.query<ThresholdDb>(
        `SELECT * FROM ${this.q}.rm_thresholds ORDER BY space_id COLLATE "C", period_start, pool COLLATE "C", threshold`,
      );
      return { spaces: spaces.rows.map(toSpace), usage: usage.rows.map(toUsage), thresholds: thresholds.rows.map(toThreshold) };
    });
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true; // the connection is unusable: drop it from the pool
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

function buildSql(s: string) {
  return {
    checkpoint: `SELECT position::text AS position FROM ${s}.rm_checkpoints WHERE name = $1`,
    ensureCheckpoint: `INSERT INTO ${s}.rm_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`,
    lockCheckpoint: `SELECT position::text AS position FROM ${s}.rm_checkpoints WHERE name = $1 FOR UPDATE`,
    setCheckpoint: `UPDATE ${s}.rm_checkpoints SET position = $2::bigint WHERE name = $1`,
    spacesIn: `SELECT * FROM ${s}.rm_spaces WHERE space_id = ANY($1::text[])`,
    spaceForView: `SELECT sp.*, (SELECT json_agg(json_build_array(u.period_start, u.period_end, u.ai_image_credits, u.ai_video_credits, u.batch_exports, u.usage_events))
      FROM ${s}.rm_usage u WHERE u.space_id = sp.space_id) AS usage FROM ${s}.rm_spaces sp WHERE sp.space_id = $1`,
    usageIn: `SELECT * FROM ${s}.rm_usage WHERE space_id = ANY($1::text[])`,
    // One index probe per pair (LIMIT 1 keeps the LATERAL from being flattened into a join that a
    // table without statistics could plan as a scan).
    usagePairs: `SELECT u.* FROM unnest($1::text[], $2::bigint[]) AS p(id, ps)
      CROSS JOIN LATERAL (SELECT * FROM ${s}.rm_usage r WHERE r.space_id = p.id AND r.period_start = p.ps LIMIT 1) AS u`,
    deleteUsage: `DELETE FROM ${s}.rm_usage AS u USING unnest($1::text[], $2::bigint[]) AS d(id, ps)
                  WHERE u.space_id = d.id AND u.period_start = d.ps`,
    deleteThresholds: `DELETE FROM ${s}.rm_thresholds AS t USING unnest($1::text[], $2::bigint[]) AS d(id, ps)
                  WHERE t.space_id = d.id AND t.period_start = d.ps`,
    putSpaces: `
      INSERT INTO ${s}.rm_spaces (space_id, timeline, last_reset_at, next_reset_at, revision)
      SELECT id, tl::json, lr, nr, rev FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS t(id, tl, lr, nr, rev)
      ON CONFLICT (space_id) DO UPDATE SET timeline = excluded.timeline, last_reset_at = excluded.last_reset_at,
        next_reset_at = excluded.next_reset_at, revision = excluded.revision`,
    putRevisions: `
      UPDATE ${s}.rm_spaces AS sp SET revision = t.rev FROM unnest($1::text[], $2::bigint[]) AS t(id, rev) WHERE sp.space_id = t.id`,
    putUsage: `
      INSERT INTO ${s}.rm_usage (space_id, period_start, period_end, ai_image_credits, ai_video_credits, batch_exports, usage_events)
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::int[])
      ON CONFLICT (space_id, period_start) DO UPDATE SET period_end = excluded.period_end, ai_image_credits = excluded.ai_image_credits,
        ai_video_credits = excluded.ai_video_credits, batch_exports = excluded.batch_exports, usage_events = excluded.usage_events`,
    putThresholds: `
      INSERT INTO ${s}.rm_thresholds (space_id, period_start, pool, threshold, state, event_id)
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[])
      ON CONFLICT (space_id, period_start, pool, threshold) DO UPDATE SET state = excluded.state, event_id = excluded.event_id`,
  };
}
