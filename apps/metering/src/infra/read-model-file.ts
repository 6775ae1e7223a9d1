/**
 * The SQLite file of the read models (balances and usage breakdown): `DATA_DIR/read-model.db`,
 * next to the event store's file (`EVENT_STORE=sqlite`) or on its own (`EVENT_STORE=kurrentdb`
 * without `DATABASE_URL`).
 *
 * Why a file of its own: SQLite has one WAL per file. With the read models in the store's file,
 * every append's commit (synchronous=FULL by default) also flushed the read-model pages the
 * projector had written since the last one, and their checkpoints; a page of events over many
 * Spaces dirties one B-tree page per Space. In a file of its own the read model is never fsynced
 * at commit (it is derived data: after a power cut its rows and checkpoint roll back together and
 * the projector applies the events again), and the store's commits carry its events only
 * (bench:flat, 300,000 events over 100,000 Spaces: 5,043-5,222 -> 5,819-6,106 events/s).
 */
import Database from 'better-sqlite3';
import * as path from 'node:path';
import { setWalCheckpointInterval } from '@metering/event-store';
import { SqliteBreakdownReadModel } from '../projection/breakdown/sqlite-breakdown-read-model';
import { SqliteBalanceReadModel } from '../projection/sqlite-balance-read-model';

export const READ_MODEL_FILE = 'read-model.db';

/**
 * Page cache of the read models' handle, KiB (negative in the pragma). Smaller than the store's
 * 64 MiB: the two used to share one 64 MiB cache, and bench:rss (1,000,000 events over 100,000
 * Spaces, peak RSS under 1 GB) peaked at 974 MiB with a second 64 MiB cache, 897 MiB with one.
 */
const READ_MODEL_CACHE_KB = 16_384;

/** Opens (creating it if needed) the read models' SQLite file: WAL, a page cache of its own, the store's checkpoint interval. */
export function openReadModelDb(dataDir: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  const db = new Database(path.join(dataDir, READ_MODEL_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('busy_timeout = 5000');
    db.pragma(`cache_size = -${READ_MODEL_CACHE_KB}`);
    setWalCheckpointInterval(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Moves the read models of an earlier version, kept in the store's file, into the read models'
 * file, once: nothing to replay, the balances and positions are the ones they were. The old
 * tables are first brought to this version's layout in place (the read models' own migrations);
 * then, in one write transaction over both files (the store's file attached to the read models'),
 * they are copied column by column into the new file's tables and dropped from the store's file.
 * SQLite commits two files of a WAL-mode transaction one after the other: a start interrupted
 * between them finds the rows already in the new file (it has a checkpoint) and only drops the old
 * tables. Two processes starting at once take turns on the write lock, and the second finds
 * nothing left to move. Returns the tables moved.
 */
export async function moveReadModelsOutOfStore(storeDb: Database.Database, readModelDb: Database.Database): Promise<string[]> {
  const tablesOf = (schema: string) =>
    new Set(storeDb.prepare(`SELECT name FROM "${schema}".sqlite_master WHERE type = 'table' AND name LIKE 'rm\\_%' ESCAPE '\\'`).pluck().all() as string[]);
  if (tablesOf('main').size === 0) return [];
  await new SqliteBalanceReadModel(readModelDb).init();
  await new SqliteBreakdownReadModel(readModelDb).init();
  const columnsOf = (schema: string, t: string) => storeDb.prepare('SELECT name FROM pragma_table_info(?, ?)').pluck().all(t, schema) as string[];
  // Nothing of this version written in the new file yet: no checkpoint of either read model.
  const isFresh = () => ['rm_checkpoints', 'rm_breakdown_checkpoint'].every((t) => storeDb.prepare(`SELECT count(*) FROM rm."${t}"`).pluck().get() === 0);
  const moved: string[] = [];
  storeDb.prepare('ATTACH DATABASE ? AS rm').run(readModelDb.name);
  try {
    // The old tables to this version's layout first (only when they are to be copied: leftovers of an interrupted move are dropped as they are).
    if (isFresh()) {
      await new SqliteBalanceReadModel(storeDb).init();
      await new SqliteBreakdownReadModel(storeDb).init();
    }
    storeDb
      .transaction(() => {
        const old = tablesOf('main');
        if (old.size === 0) return; // another process moved them meanwhile
        const target = tablesOf('rm');
        const fresh = isFresh();
        for (const t of old) {
          if (fresh && target.has(t)) {
            const oldColumns = new Set(columnsOf('main', t));
            const list = columnsOf('rm', t).filter((c) => oldColumns.has(c)).map((c) => `"${c}"`).join(', ');
            storeDb.exec(`DELETE FROM rm."${t}"; INSERT INTO rm."${t}" (${list}) SELECT ${list} FROM main."${t}"`);
            moved.push(t);
          }
          storeDb.exec(`DROP TABLE main."${t}"`);
        }
      })
      .immediate();
  } finally {
    storeDb.exec('DETACH DATABASE rm');
  }
  return moved.sort();
}
