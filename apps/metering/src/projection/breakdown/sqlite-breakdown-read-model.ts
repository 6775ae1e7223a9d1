import type { Database } from 'better-sqlite3';
import type { StoredEvent } from '@metering/event-store';
import { hasRowid, rebuildWithoutRowid } from '../sqlite-without-rowid';
import { BREAKDOWN_CHECKPOINT, BreakdownBatch, type BreakdownDump, type BreakdownReadModel, type BreakdownRow, type WatchRow, byUse } from './breakdown';

interface RowDb { space_id: string; period_start: number; user_id: string; feature: string; ai_image_credits: number; ai_video_credits: number; batch_exports: number; events: number }
interface WatchDb { space_id: string; pool: WatchRow['pool']; threshold: number; period_start: number; state: WatchRow['state']; used: number; limit_: number; position: string; recorded_at: string }

export const toBreakdownRow = (r: RowDb): BreakdownRow => ({
  spaceId: r.space_id,
  periodStart: Number(r.period_start),
  userId: r.user_id,
  feature: r.feature,
  used: { ai_image_credits: Number(r.ai_image_credits), ai_video_credits: Number(r.ai_video_credits), batch_exports: Number(r.batch_exports) },
  events: Number(r.events),
});
export const toWatchRow = (r: WatchDb): WatchRow => ({
  spaceId: r.space_id,
  pool: r.pool,
  threshold: Number(r.threshold),
  periodStart: Number(r.period_start),
  state: r.state,
  used: Number(r.used),
  limit: Number(r.limit_),
  position: String(r.position),
  recordedAt: r.recorded_at,
});

/** rm_breakdown's columns and key, shared by its creation and its migration. */
const BREAKDOWN_COLUMNS = `
  space_id TEXT NOT NULL, period_start INTEGER NOT NULL, user_id TEXT NOT NULL, feature TEXT NOT NULL,
  ai_image_credits INTEGER NOT NULL, ai_video_credits INTEGER NOT NULL, batch_exports INTEGER NOT NULL, events INTEGER NOT NULL,
  PRIMARY KEY (space_id, period_start, user_id, feature)`;
const BREAKDOWN_COLUMN_NAMES = 'space_id, period_start, user_id, feature, ai_image_credits, ai_video_credits, batch_exports, events';

/** The breakdown read model in SQLite: the same file (and connection) as the balance read model by default. */
export class SqliteBreakdownReadModel implements BreakdownReadModel {
  constructor(private readonly db: Database, private readonly ownsDb = false) {}

  async init(): Promise<void> {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS rm_breakdown_checkpoint (name TEXT PRIMARY KEY, position TEXT NOT NULL);
      -- WITHOUT ROWID (see sqlite-without-rowid.ts): a new row changes one B-tree instead of two.
      CREATE TABLE IF NOT EXISTS rm_breakdown (${BREAKDOWN_COLUMNS}) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS rm_breakdown_watch (
        space_id TEXT NOT NULL, pool TEXT NOT NULL, threshold INTEGER NOT NULL, period_start INTEGER NOT NULL,
        state TEXT NOT NULL, used INTEGER NOT NULL, limit_ INTEGER NOT NULL, position TEXT NOT NULL, recorded_at TEXT NOT NULL,
        PRIMARY KEY (space_id, pool, threshold));
      CREATE INDEX IF NOT EXISTS rm_breakdown_watch_fired ON rm_breakdown_watch(threshold DESC, position DESC) WHERE state = 'fired';
    `);
    this.migrate();
  }

  /**
   * Brings an rm_breakdown written by an earlier version (a rowid table with its key in a separate
   * index) to the WITHOUT ROWID layout, rows unchanged: one transaction, checked again inside it, so
   * two processes opening the file at once migrate once.
   */
  private migrate(): void {
    const db = this.db;
    if (!hasRowid(db, 'rm_breakdown')) return;
    db.transaction(() => {
      if (hasRowid(db, 'rm_breakdown')) rebuildWithoutRowid(db, 'rm_breakdown', BREAKDOWN_COLUMNS, BREAKDOWN_COLUMN_NAMES);
    }).immediate();
  }

  private stmtCache: ReturnType<SqliteBreakdownReadModel['prepare']> | null = null;
  private get st() {
    return (this.stmtCache ??= this.prepare());
  }

  private prepare() {
    const db = this.db;
    return {
      getCheckpoint: db.prepare('SELECT position FROM rm_breakdown_checkpoint WHERE name = ?'),
      setCheckpoint: db.prepare('INSERT INTO rm_breakdown_checkpoint (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position'),
      addRow: db.prepare(
        // Positional parameters: one row per use, and binding by name cost about half again as much.
        `INSERT INTO rm_breakdown (space_id, period_start, user_id, feature, ai_image_credits, ai_video_credits, batch_exports, events)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(space_id, period_start, user_id, feature) DO UPDATE SET
           ai_image_credits = rm_breakdown.ai_image_credits + excluded.ai_image_credits,
           ai_video_credits = rm_breakdown.ai_video_credits + excluded.ai_video_credits,
           batch_exports = rm_breakdown.batch_exports + excluded.batch_exports,
           events = rm_breakdown.events + excluded.events`,
      ),
      setWatch: db.prepare(
        `INSERT INTO rm_breakdown_watch (space_id, pool, threshold, period_start, state, used, limit_, position, recorded_at)
         VALUES (@space_id, @pool, @threshold, @period_start, @state, @used, @limit_, @position, @recorded_at)
         ON CONFLICT(space_id, pool, threshold) DO UPDATE SET period_start = excluded.period_start, state = excluded.state,
           used = excluded.used, limit_ = excluded.limit_, position = excluded.position, recorded_at = excluded.recorded_at
         WHERE excluded.period_start >= rm_breakdown_watch.period_start`,
      ),
      resetWatch: db.prepare('DELETE FROM rm_breakdown_watch WHERE space_id = ? AND period_start < ?'),
      clearWatch: db.prepare('DELETE FROM rm_breakdown_watch WHERE space_id = ? AND period_start = ?'),
      clearRows: db.prepare('DELETE FROM rm_breakdown WHERE space_id = ? AND period_start = ?'),
      dropEmpty: db.prepare('DELETE FROM rm_breakdown WHERE space_id = ? AND period_start = ? AND user_id = ? AND feature = ? AND events <= 0'),
      forPeriod: db.prepare('SELECT * FROM rm_breakdown WHERE space_id = ? AND period_start = ?'),
      watchList: db.prepare("SELECT * FROM rm_breakdown_watch WHERE state = 'fired' ORDER BY threshold DESC, CAST(position AS INTEGER) DESC LIMIT CAST(? AS INTEGER)"),
    };
  }

  private stored(): bigint {
    const r = this.st.getCheckpoint.get(BREAKDOWN_CHECKPOINT) as { position: string } | undefined;
    return r ? BigInt(r.position) : 0n;
  }

  async checkpoint(): Promise<bigint> {
    return this.stored();
  }

  async apply(events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    const st = this.st;
    // Derived data, like the balances: the commit need not wait for an fsync (a later synchronous
    // commit of the store syncs it; a power cut can only move the checkpoint back with the rows).
    const before = this.db.pragma('synchronous', { simple: true }) as number;
    if (before > 1) this.db.pragma('synchronous = NORMAL');
    try {
      this.db
        .transaction(() => {
          const from = this.stored();
          const batch = new BreakdownBatch(from);
          for (const e of events) batch.add(e);
          if (batch.position === from) return;
          for (const c of batch.cleared) st.clearRows.run(c.spaceId, c.periodStart);
          for (const r of batch.sums.values())
            st.addRow.run(r.spaceId, r.periodStart, r.userId, r.feature, r.used.ai_image_credits, r.used.ai_video_credits, r.used.batch_exports, r.events);
          // A member move took usage out of these rows: one left with no usage event goes away.
          for (const r of batch.emptied()) st.dropEmpty.run(r.spaceId, r.periodStart, r.userId, r.feature);
          for (const c of batch.watch) {
            if (c.kind === 'reset') st.resetWatch.run(c.spaceId, c.periodStart);
            else if (c.kind === 'clear') st.clearWatch.run(c.spaceId, c.periodStart);
            else {
              const w = c.row;
              st.setWatch.run({ space_id: w.spaceId, pool: w.pool, threshold: w.threshold, period_start: w.periodStart, state: w.state, used: w.used, limit_: w.limit, position: w.position, recorded_at: w.recordedAt });
            }
          }
          st.setCheckpoint.run(BREAKDOWN_CHECKPOINT, batch.position.toString());
        })
        .immediate();
    } finally {
      if (before > 1) this.db.pragma(`synchronous = ${before}`);
    }
  }

  async forPeriod(spaceId: string, periodStart: number): Promise<BreakdownRow[]> {
    return (this.st.forPeriod.all(spaceId, periodStart) as RowDb[]).map(toBreakdownRow).sort(byUse);
  }

  async watchList(limit: number): Promise<WatchRow[]> {
    return (this.st.watchList.all(limit) as WatchDb[]).map(toWatchRow);
  }

  async clear(): Promise<void> {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM rm_breakdown; DELETE FROM rm_breakdown_watch; DELETE FROM rm_breakdown_checkpoint;');
    })();
  }

  async dump(): Promise<BreakdownDump> {
    return {
      rows: (this.db.prepare('SELECT * FROM rm_breakdown ORDER BY space_id, period_start, user_id, feature').all() as RowDb[]).map(toBreakdownRow),
      watch: (this.db.prepare('SELECT * FROM rm_breakdown_watch ORDER BY space_id, pool, threshold').all() as WatchDb[]).map(toWatchRow),
    };
  }

  async close(): Promise<void> {
    if (this.ownsDb) this.db.close();
  }
}
