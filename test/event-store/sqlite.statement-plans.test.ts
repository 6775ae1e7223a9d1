/**
 * A rule for every statement the SQLite store and the SQLite read models prepare: its plan must not
 * depend on the values bound to it. With SQLite 3.54.1 (better-sqlite3 13.2) a statement with an
 * ORDER BY (or min/max) and an `= ?`, or with `LIMIT ?`, is compiled again on every execution
 * (`sqlite3Reprepare` under `sqlite3_step` in perf; the previous stream read ran at 0.48x a raw
 * indexed read, `npm run bench:statements`). So, in a statement with ORDER BY, min( or max(:
 * every `= <parameter>` says `COLLATE BINARY` after it, and LIMIT takes `CAST(<parameter> AS INTEGER)`.
 * (better-sqlite3 shows no re-preparation, so the rule is checked on the SQL text.)
 */
import Database from 'better-sqlite3';
import { SqliteEventStore } from '@metering/event-store';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { SqliteBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/sqlite-breakdown-read-model';

/** What is wrong with one statement's SQL under the rule (empty: nothing). */
function planRuleViolations(sql: string): string[] {
  const s = sql.replace(/\s+/g, ' ');
  if (!/\border by\b|\b(min|max)\(/i.test(s)) return [];
  const out: string[] = [];
  for (const m of s.matchAll(/(?<![<>!=])=\s*([?]\d*|[@:$][A-Za-z_]\w*)(?!\w|\s+COLLATE\b)/g)) out.push(`"= ${m[1]}" without COLLATE BINARY`);
  for (const m of s.matchAll(/\bLIMIT\s+([?]\d*|[@:$][A-Za-z_]\w*)/gi)) out.push(`"LIMIT ${m[1]}" without CAST(... AS INTEGER)`);
  return out;
}

test('the rule itself: it names what would make SQLite compile a statement again', () => {
  expect(planRuleViolations('SELECT * FROM t WHERE a = ? ORDER BY b LIMIT ?')).toEqual(['"= ?" without COLLATE BINARY', '"LIMIT ?" without CAST(... AS INTEGER)']);
  expect(planRuleViolations('SELECT max(b) FROM t WHERE a = @name')).toEqual(['"= @name" without COLLATE BINARY']);
  expect(planRuleViolations('SELECT * FROM t WHERE a = ? COLLATE BINARY ORDER BY b LIMIT CAST(? AS INTEGER)')).toEqual([]);
  // no ORDER BY, min or max: nothing depends on the bound values
  expect(planRuleViolations('SELECT * FROM t WHERE a = ? AND b >= ?')).toEqual([]);
  expect(planRuleViolations('SELECT * FROM t WHERE a >= ? AND b <= ? AND c != ? ORDER BY a')).toEqual([]);
  expect(planRuleViolations('UPDATE t SET a = ? WHERE b = ?')).toEqual([]);
});

test('every statement of the SQLite store and read models keeps its plan', async () => {
  const prepared: string[] = [];
  const original = Database.prototype.prepare;
  const spy = jest.spyOn(Database.prototype, 'prepare').mockImplementation(function (this: Database.Database, sql: string) {
    prepared.push(sql);
    return original.call(this, sql);
  } as typeof original);
  try {
    const db = new Database(':memory:');
    const store = new SqliteEventStore(db);
    const balances = new SqliteBalanceReadModel(db);
    await balances.init();
    await balances.checkpoint();
    const breakdown = new SqliteBreakdownReadModel(db);
    await breakdown.init();
    await breakdown.checkpoint();
    await store.headPosition();
    await store.storeId();
    await store.hasPosition(1n);
    await store.close();
    db.close();
  } finally {
    spy.mockRestore();
  }
  // the store's own statements and the read models' were all seen
  expect(prepared.some((s) => /FROM events WHERE stream_name = \?/.test(s))).toBe(true);
  expect(prepared.some((s) => /FROM rm_usage WHERE space_id = \?/.test(s))).toBe(true);
  expect(prepared.some((s) => /FROM rm_breakdown_watch/.test(s))).toBe(true);
  const violations = prepared.flatMap((sql) => planRuleViolations(sql).map((v) => `${v}: ${sql.replace(/\s+/g, ' ').trim()}`));
  expect(violations).toEqual([]);
});
