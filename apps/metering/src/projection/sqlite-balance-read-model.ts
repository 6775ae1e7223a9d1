import type { Database } from 'better-sqlite3';
import type { Limits } from '@metering/domain';
import { emptyLimits } from '@metering/domain';
import type { StoredEvent } from '@metering/event-store';
import type { BalanceReadModel, ReadModelDump, SpaceRow, ThresholdRow, UsageRow } from './balance-read-model';
import { BatchRows, type PageEvent, applyEvent, applyPageEvent } from './apply-events';
import { hasRowid, rebuildWithoutRowid } from './sqlite-without-rowid';

const CHECKPOINT = 'balances';

interface SpaceDb { space_id: string; timeline: string; last_reset_at: number | null; next_reset_at: number | null; revision: number }
interface UsageDb { space_id: string; period_start: number; period_end: number | null; ai_image_credits: number; ai_video_credits: number; batch_exports: number; usage_events: number }
interface ThresholdDb { space_id: string; period_start: number; pool: string; threshold: number; state: 'fired' | 'rearmed'; event_id: string }

/**
 * A Space row: rm_spaces with its revision. The revision of the Space's last event applied is the
 * higher of its rm_space_revisions row and the revisions its rm_usage rows carry: a batch whose
 * events changed nothing of a Space's row but its revision, and wrote usage rows of it (usage
 * events), writes the revision into those usage rows only, not into rm_space_revisions (see
 * `writeRows`). Correlated subqueries rather than a JOIN: the JOIN statement cost about twice the
 * CPU per lookup (better-sqlite3 kept rebuilding its row shape) on the projector's hot path.
 */
const SELECT_SPACES = `SELECT s.space_id, s.timeline, s.last_reset_at, s.next_reset_at,
  max(coalesce((SELECT r.revision FROM rm_space_revisions r WHERE r.space_id = s.space_id), -1),
      coalesce((SELECT max(u.revision) FROM rm_usage u WHERE u.space_id = s.space_id), -1)) AS revision
  FROM rm_spaces s`;

const toSpace = (r: SpaceDb): SpaceRow => ({
  spaceId: r.space_id,
  timeline: JSON.parse(r.timeline),
  lastResetAt: r.last_reset_at,
  nextResetAt: r.next_reset_at,
  revision: r.revision,
});
const toUsage = (r: UsageDb): UsageRow => ({
  spaceId: r.space_id,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  used: { ai_image_credits: r.ai_image_credits, ai_video_credits: r.ai_video_credits, batch_exports: r.batch_exports },
  usageEvents: r.usage_events,
});
const toThreshold = (r: ThresholdDb): ThresholdRow => ({
  spaceId: r.space_id, periodStart: r.period_start, pool: r.pool, threshold: r.threshold, state: r.state, eventId: r.event_id,
});

/**
 * rm_usage's columns and key, shared by its creation and its migration. `revision`: the revision of
 * its Space's last event applied when the row was last written (null in rows written before it was
 * kept), one of the two places the Space's revision is read from (SELECT_SPACES).
 */
const USAGE_COLUMNS = `
  space_id TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER,
  ai_image_credits INTEGER NOT NULL, ai_video_credits INTEGER NOT NULL, batch_exports INTEGER NOT NULL,
  usage_events INTEGER NOT NULL, revision INTEGER, PRIMARY KEY (space_id, period_start)`;
/** The columns a migration copies (`revision` is absent from the tables of earlier versions). */
const USAGE_COLUMN_NAMES = 'space_id, period_start, period_end, ai_image_credits, ai_video_credits, batch_exports, usage_events';

/** The balance read model in SQLite (the service keeps it in DATA_DIR/read-model.db: infra/read-model-file.ts). */
export class SqliteBalanceReadModel implements BalanceReadModel {
  /** `db`: the handle it reads and writes (shared with the breakdown read model of the same file). */
  constructor(readonly db: Database, private readonly ownsDb = false) {}

  async init(): Promise<void> {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS rm_checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rm_spaces (
        space_id TEXT PRIMARY KEY, timeline TEXT NOT NULL, last_reset_at INTEGER, next_reset_at INTEGER);
      CREATE INDEX IF NOT EXISTS rm_spaces_next_reset ON rm_spaces(next_reset_at) WHERE next_reset_at IS NOT NULL;
      -- The revision changes with every event of the Space, the rest of its row with subscription
      -- changes and resets only: kept apart in narrow rows, a page of usage events dirties a few
      -- pages of this table instead of one page of rm_spaces per Space.
      CREATE TABLE IF NOT EXISTS rm_space_revisions (space_id TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
      -- WITHOUT ROWID: the row lives in its key's B-tree (one tree to change per row, no separate key index).
      CREATE TABLE IF NOT EXISTS rm_usage (${USAGE_COLUMNS}) WITHOUT ROWID;
      -- One row per use was kept until usage moves were recorded in SubscriptionChanged (no longer read).
      DROP TABLE IF EXISTS rm_usage_items;
      CREATE TABLE IF NOT EXISTS rm_thresholds (
        space_id TEXT NOT NULL, period_start INTEGER NOT NULL, pool TEXT NOT NULL, threshold INTEGER NOT NULL,
        state TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (space_id, period_start, pool, threshold));
    `);
    this.migrate();
  }

  /**
   * Brings a read model written by an earlier version to this layout, rows unchanged (one
   * transaction, checked again inside it, so two processes opening the file at once migrate once):
   * rm_spaces.revision moves to rm_space_revisions, rm_usage becomes a WITHOUT ROWID table, and
   * rm_usage gains its revision column (null in the rows it held).
   */
  private migrate(): void {
    const db = this.db;
    const hasColumn = (table: string, column: string) =>
      (db.prepare('SELECT count(*) AS n FROM pragma_table_info(?) WHERE name = ?').get(table, column) as { n: number }).n > 0;
    const hasRevisionColumn = () => hasColumn('rm_spaces', 'revision');
    const usageHasRowid = () => hasRowid(db, 'rm_usage');
    const usageLacksRevision = () => !hasColumn('rm_usage', 'revision');
    if (!hasRevisionColumn() && !usageHasRowid() && !usageLacksRevision()) return;
    db.transaction(() => {
      if (hasRevisionColumn()) {
        db.exec(`
          INSERT OR REPLACE INTO rm_space_revisions (space_id, revision) SELECT space_id, revision FROM rm_spaces;
          ALTER TABLE rm_spaces DROP COLUMN revision;
        `);
      }
      if (usageHasRowid()) rebuildWithoutRowid(db, 'rm_usage', USAGE_COLUMNS, USAGE_COLUMN_NAMES);
      if (usageLacksRevision()) db.exec('ALTER TABLE rm_usage ADD COLUMN revision INTEGER');
    }).immediate();
  }

  async checkpoint(): Promise<bigint> {
    return this.storedCheckpoint();
  }

  private stmtCache: ReturnType<SqliteBalanceReadModel['prepare']> | null = null;

  /** Statements prepared once per read model (init must have created the tables). */
  private get stmts(): ReturnType<SqliteBalanceReadModel['prepare']> {
    return (this.stmtCache ??= this.prepare());
  }

  private prepare() {
    const db = this.db;
    return {
      // COLLATE BINARY (the column's own): SELECT_SPACES has a max() (see usageOf below).
      getSpace: db.prepare(`${SELECT_SPACES} WHERE s.space_id = ? COLLATE BINARY`),
      putSpace: db.prepare(
        `INSERT INTO rm_spaces (space_id, timeline, last_reset_at, next_reset_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(space_id) DO UPDATE SET timeline = excluded.timeline, last_reset_at = excluded.last_reset_at,
           next_reset_at = excluded.next_reset_at`,
      ),
      // Every Space of the batch; a Space whose events changed only its revision (usage) gets no
      // other write: its rm_spaces row (timeline, next_reset_at index entry) stays as it is.
      updateRevision: db.prepare('UPDATE rm_space_revisions SET revision = ? WHERE space_id = ?'),
      putRevision: db.prepare('INSERT INTO rm_space_revisions (space_id, revision) VALUES (?, ?) ON CONFLICT(space_id) DO UPDATE SET revision = excluded.revision'),
      getUsage: db.prepare('SELECT * FROM rm_usage WHERE space_id = ? AND period_start = ?'),
      putUsage: db.prepare(
        `INSERT INTO rm_usage (space_id, period_start, period_end, ai_image_credits, ai_video_credits, batch_exports, usage_events, revision)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(space_id, period_start) DO UPDATE SET period_end = excluded.period_end, ai_image_credits = excluded.ai_image_credits,
           ai_video_credits = excluded.ai_video_credits, batch_exports = excluded.batch_exports, usage_events = excluded.usage_events,
           revision = excluded.revision`,
      ),
      // A period's uses counted in a batch that did not read its row: added to the stored row, or
      // the row when there is none (the end and revision are the batch's, as in putUsage).
      addUsage: db.prepare(
        `INSERT INTO rm_usage (space_id, period_start, period_end, ai_image_credits, ai_video_credits, batch_exports, usage_events, revision)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(space_id, period_start) DO UPDATE SET period_end = excluded.period_end,
           ai_image_credits = ai_image_credits + excluded.ai_image_credits, ai_video_credits = ai_video_credits + excluded.ai_video_credits,
           batch_exports = batch_exports + excluded.batch_exports, usage_events = usage_events + excluded.usage_events,
           revision = excluded.revision`,
      ),
      putThreshold: db.prepare(
        `INSERT INTO rm_thresholds (space_id, period_start, pool, threshold, state, event_id) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(space_id, period_start, pool, threshold) DO UPDATE SET state = excluded.state, event_id = excluded.event_id`,
      ),
      anyRow: db.prepare('SELECT EXISTS (SELECT 1 FROM rm_spaces) OR EXISTS (SELECT 1 FROM rm_usage) OR EXISTS (SELECT 1 FROM rm_thresholds) AS any').pluck(),
      // COLLATE BINARY and CAST: the plan does not depend on the bound values, so SQLite does not
      // compile the statement again on each run (see libs/event-store/src/sqlite/sqlite-schema.ts).
      usageOf: db.prepare('SELECT * FROM rm_usage WHERE space_id = ? COLLATE BINARY ORDER BY period_start'),
      idsAfter: db.prepare('SELECT space_id FROM rm_spaces WHERE space_id > ? ORDER BY space_id LIMIT CAST(? AS INTEGER)'),
      due: db.prepare('SELECT space_id FROM rm_spaces WHERE next_reset_at IS NOT NULL AND next_reset_at <= ? ORDER BY next_reset_at, space_id LIMIT CAST(? AS INTEGER)'),
      deleteUsage: db.prepare('DELETE FROM rm_usage WHERE space_id = ? AND period_start = ?'),
      deleteThresholds: db.prepare('DELETE FROM rm_thresholds WHERE space_id = ? AND period_start = ?'),
      getCheckpoint: db.prepare('SELECT position FROM rm_checkpoints WHERE name = ?'),
      setCheckpoint: db.prepare('INSERT INTO rm_checkpoints (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position'),
      advanceCheckpoint: db.prepare('INSERT INTO rm_checkpoints (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = CASE WHEN CAST(excluded.position AS INTEGER) > CAST(position AS INTEGER) THEN excluded.position ELSE position END'),
    };
  }

  /**
   * A row buffer that loads stored rows through this database; `empty`: the read model holds no
   * row (a rebuild's first pages), so there is nothing to load.
   */
  private newRows(empty = false): BatchRows {
    const st = this.stmts;
    if (empty) return new BatchRows({ space: () => null, usage: () => null });
    return new BatchRows({
      // Uses on a period not read in the batch are added to the stored row (addUsage): not read.
      additive: true,
      space: (id) => {
        const r = st.getSpace.get(id) as SpaceDb | undefined;
        return r ? toSpace(r) : null;
      },
      usage: (id, start) => {
        const r = st.getUsage.get(id, start) as UsageDb | undefined;
        return r ? toUsage(r) : null;
      },
    });
  }

  private storedCheckpoint(): bigint {
    const r = this.stmts.getCheckpoint.get(CHECKPOINT) as { position: string } | undefined;
    return r ? BigInt(r.position) : 0n;
  }

  /**
   * Writes a batch's rows and the checkpoint (inside the caller's transaction). Each usage row
   * written carries its Space's revision as of the batch's end. A Space whose row changed beyond its
   * revision gets its rm_space_revisions row written too; one whose revision alone changed gets it
   * only when the batch wrote no usage row of it (SELECT_SPACES reads the higher of the two): in a
   * page of usage events over many Spaces that is one row per Space written instead of two. Rows
   * of a Space are deleted only by a change of its timeline, so a Space that loses a usage row
   * here gets its rm_space_revisions row written in the same batch. Usage rows come whole (`put`)
   * or as counts added to the stored row (`added`: periods the batch did not read, see
   * `StoredRows.additive`).
   */
  private writeRows(rows: BatchRows, position: bigint): void {
    const st = this.stmts;
    const { thresholds } = rows;
    const usage = rows.usageChanges();
    for (const d of usage.deleted) st.deleteUsage.run(d.spaceId, d.periodStart);
    const spaces = rows.spaceChanges();
    for (const sp of spaces.full) {
      st.putSpace.run(sp.spaceId, JSON.stringify(sp.timeline), sp.lastResetAt, sp.nextResetAt);
      st.putRevision.run(sp.spaceId, sp.revision);
    }
    const deletedFrom = new Set(usage.deleted.map((d) => d.spaceId));
    const withUsage = new Set<string>();
    for (const [statement, list] of [[st.putUsage, usage.put], [st.addUsage, usage.added]] as const)
      for (const u of list) {
        statement.run(u.spaceId, u.periodStart, u.periodEnd, u.used.ai_image_credits, u.used.ai_video_credits, u.used.batch_exports, u.usageEvents, u.revision);
        withUsage.add(u.spaceId);
      }
    // A stored row's revision alone (its Space row may not even have been read: see BatchRows),
    // where no usage row written above carries it.
    for (const sp of spaces.revisionOnly) {
      if (withUsage.has(sp.spaceId) && !deletedFrom.has(sp.spaceId)) continue;
      if (st.updateRevision.run(sp.revision, sp.spaceId).changes !== 1) throw new Error(`read model: the row of Space ${sp.spaceId} went away during the batch`);
    }
    for (const c of rows.clearedThresholds) st.deleteThresholds.run(c.spaceId, c.periodStart);
    for (const t of thresholds.values()) st.putThreshold.run(t.spaceId, t.periodStart, t.pool, t.threshold, t.state, t.eventId);
    st.setCheckpoint.run(CHECKPOINT, position.toString());
  }

  /**
   * Commits a read-model transaction. The read model is derived data (rebuildable from the store,
   * checkpoint in the same transaction), so its commits need not wait for an fsync: in WAL mode a
   * later synchronous commit of the store syncs these frames too, and a power cut can only move
   * the checkpoint back, never ahead of the rows.
   */
  private commit<T>(work: () => T): T {
    const before = this.db.pragma('synchronous', { simple: true }) as number;
    if (before > 1) this.db.pragma('synchronous = NORMAL');
    try {
      return this.db.transaction(work).immediate();
    } finally {
      if (before > 1) this.db.pragma(`synchronous = ${before}`);
    }
  }

  async apply(events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    // Rows touched in this batch are kept in memory and written once at the end of the transaction.
    this.commit(() => {
      let position = this.storedCheckpoint();
      const rows = this.newRows();
      for (const e of events) {
        if (e.globalPosition <= position) continue;
        applyEvent(rows, e);
        position = e.globalPosition;
      }
      this.writeRows(rows, position);
    });
  }

  /**
   * Applies many pages with one row buffer (a rebuild): each row is written once per flush instead
   * of once per page. Flushes (rows + checkpoint, one transaction) when `flushAtRows` rows are
   * buffered and at the end. Run it with no other projector on this read model.
   */
  async applyPages(pages: AsyncIterable<readonly PageEvent[]>, flushAtRows = 300_000): Promise<number> {
    let position = this.storedCheckpoint();
    // A cleared read model has no row to load until the first flush writes some.
    let rows = this.newRows(this.stmts.anyRow.get() === 0);
    let applied = 0;
    let pendingFrom = position;
    const flush = () => {
      if (position === pendingFrom) return;
      const [r, p] = [rows, position];
      this.commit(() => this.writeRows(r, p));
      rows = this.newRows();
      pendingFrom = position;
    };
    for await (const page of pages) {
      if (page.length === 0) continue;
      if (page[0].globalPosition > position) {
        // The whole page is new (pages are in position order): no per-event position check.
        for (const e of page) applyPageEvent(rows, e);
        position = page[page.length - 1].globalPosition;
        applied += page.length;
      } else {
        for (const e of page) {
          if (e.globalPosition <= position) continue;
          applyPageEvent(rows, e);
          position = e.globalPosition;
          applied++;
        }
      }
      if (rows.size >= flushAtRows) flush();
    }
    flush();
    return applied;
  }

  async getSpace(spaceId: string): Promise<SpaceRow | null> {
    const r = this.stmts.getSpace.get(spaceId) as SpaceDb | undefined;
    return r ? toSpace(r) : null;
  }

  async usedIn(spaceId: string, periodStart: number): Promise<Limits> {
    const r = this.stmts.getUsage.get(spaceId, periodStart) as UsageDb | undefined;
    return r ? toUsage(r).used : emptyLimits();
  }

  async usage(spaceId: string): Promise<UsageRow[]> {
    return (this.stmts.usageOf.all(spaceId) as UsageDb[]).map(toUsage);
  }

  async spaceForView(spaceId: string): Promise<{ space: SpaceRow | null; usage: UsageRow[] }> {
    const st = this.stmts;
    // One read transaction: one snapshot of both tables.
    return this.db.transaction(() => {
      const r = st.getSpace.get(spaceId) as SpaceDb | undefined;
      return { space: r ? toSpace(r) : null, usage: (st.usageOf.all(spaceId) as UsageDb[]).map(toUsage) };
    })();
  }

  async spaceIdsAfter(after: string, limit: number): Promise<string[]> {
    return (this.stmts.idsAfter.all(after, limit) as { space_id: string }[]).map((r) => r.space_id);
  }

  async dueForReset(now: number, limit: number): Promise<string[]> {
    return (
      this.stmts.due.all(now, limit) as { space_id: string }[]
    ).map((r) => r.space_id);
  }

  async clear(): Promise<void> {
    this.db.exec('DELETE FROM rm_spaces; DELETE FROM rm_space_revisions; DELETE FROM rm_usage; DELETE FROM rm_thresholds; DELETE FROM rm_checkpoints WHERE name NOT LIKE \'pos:%\';');
  }

  async dump(): Promise<ReadModelDump> {
    return {
      spaces: (this.db.prepare(`${SELECT_SPACES} ORDER BY s.space_id`).all() as SpaceDb[]).map(toSpace),
      usage: (this.db.prepare('SELECT * FROM rm_usage ORDER BY space_id, period_start').all() as UsageDb[]).map(toUsage),
      thresholds: (this.db.prepare('SELECT * FROM rm_thresholds ORDER BY space_id, period_start, pool, threshold').all() as ThresholdDb[]).map(toThreshold),
    };
  }

  async getPosition(name: string): Promise<bigint> {
    const r = this.stmts.getCheckpoint.get(`pos:${name}`) as { position: string } | undefined;
    return r ? BigInt(r.position) : 0n;
  }

  async setPosition(name: string, position: bigint): Promise<void> {
    this.stmts.setCheckpoint.run(`pos:${name}`, position.toString());
  }

  async advancePosition(name: string, position: bigint): Promise<void> {
    this.stmts.advanceCheckpoint.run(`pos:${name}`, position.toString()); // positions are kept as text: compared as integers
  }

  async close(): Promise<void> {
    if (this.ownsDb) this.db.close();
  }
}
