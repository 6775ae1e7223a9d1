/**
 * The read models' SQLite tables keyed by what they are looked up by are WITHOUT ROWID (a row lives
 * in its key's B-tree: one tree to change per row written, no separate key index). Tables written by
 * an earlier version as rowid tables are rebuilt in place, rows unchanged.
 */
import type { Database } from 'better-sqlite3';

/** Whether `table` is a rowid table (created without `WITHOUT ROWID`). */
export function hasRowid(db: Database, table: string): boolean {
  const sql = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(table) as string;
  return !/WITHOUT\s+ROWID/i.test(sql);
}

/**
 * Rebuilds `table` as a WITHOUT ROWID table of `columnsDdl` (its columns and key), copying the
 * columns `columnNames`. Call it inside the caller's write transaction, after checking `hasRowid`
 * there (two processes opening the file at once then migrate once).
 */
export function rebuildWithoutRowid(db: Database, table: string, columnsDdl: string, columnNames: string): void {
  db.exec(`
    CREATE TABLE ${table}_migrated (${columnsDdl}) WITHOUT ROWID;
    INSERT INTO ${table}_migrated (${columnNames}) SELECT ${columnNames} FROM ${table};
    DROP TABLE ${table};
    ALTER TABLE ${table}_migrated RENAME TO ${table};
  `);
}
