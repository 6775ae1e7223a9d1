/**
 * How SQLite's own write rate moves as the store grows, with nothing of the service in between:
 * the same stream of usage-like rows (random event ids, `spaces` streams drawn at random, one
 * transaction of `group` rows, WAL, synchronous=FULL, the adapter's page cache and checkpoint
 * interval) written into three layouts, each file from empty to its longest length, the rate
 * measured over a window of `window` rows starting at each of `at` rows already stored:
 *  - 'rows': the events table without its two unique indexes (appended rows alone): the raw
 *    baseline every other figure is a ratio to, window by window;
 *  - 'store': the store's own schema (`SCHEMA` of the SQLite adapter: unique event id, unique
 *    stream and revision);
 *  - 'staged': a layout the store does not have, measured as the lever bench:flat pointed to: the
 *    store's table, plus a small table of the same shape that takes the new rows and is merged into
 *    the large one in bulk every `mergeRows` rows (one INSERT ... SELECT ordered by position, then
 *    the small table emptied), so that a merge dirties each page of the large table's indexes once
 *    for many rows. Every new id is probed in the large table, as the store would have to.
 * Each window's rate is given as a ratio to the same layout's first window (how flat the layout is
 * in the store's length) and to the 'rows' layout's same window.
 *
 *   node -r @swc-node/register bench/sqlite-length.bench.ts [--smoke]
 *   env: BENCH_LENGTH_AT (0,200000,1200000), BENCH_LENGTH_WINDOW (100000), BENCH_LENGTH_SPACES (100000),
 *        BENCH_LENGTH_MERGE_ROWS (20000), BENCH_LENGTH_LAYOUTS (rows,store,staged), BENCH_LENGTH_CACHE_KB (65536),
 *        BENCH_LENGTH_WARMUP (20000; 0 in the smoke form)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_WAL_AUTOCHECKPOINT_PAGES } from '@metering/event-store';
import { SCHEMA } from '../libs/event-store/src/sqlite/sqlite-schema';
import { prng } from '../test/support/workload/random';
import { type BenchReport, type Scale, fmt, log, ratio, runAsScript, tempDir, writtenBytes } from './common';

export type Layout = 'rows' | 'store' | 'staged';

export interface LengthWindow {
  layout: Layout;
  /** Rows stored when the window began. */
  at: number;
  rows: number;
  /** Rows written per second over the window. */
  rate: number;
  cpuUsPerRow: number;
  /** KiB this process caused to be written to storage per row (/proc/self/io), null where not available. */
  kibWrittenPerRow: number | null;
  /** 'staged': merges inside the window. */
  merges: number;
}

export interface LengthParams {
  at: number[];
  window: number;
  spaces: number;
  group: number;
  mergeRows: number;
  layouts: Layout[];
  /** The page cache of each file, KiB (the adapter's default: 65536). */
  cacheKb: number;
  /** Rows written first into a file of the layout's own that is then thrown away (JIT and allocator warm, not timed). */
  warmUp: number;
}

const COLUMNS = 'stream_name, revision, event_id, type, data, metadata, recorded_at';

/** The events table without its two unique constraints (the same columns, the position the rowid). */
const ROWS_ONLY = `CREATE TABLE events (global_position INTEGER PRIMARY KEY AUTOINCREMENT, stream_name TEXT NOT NULL,
  revision INTEGER NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL)`;

/** 'staged': the new rows' table, of the events table's shape with explicit positions. */
const STAGED = `CREATE TABLE events_new (global_position INTEGER PRIMARY KEY, stream_name TEXT NOT NULL, revision INTEGER NOT NULL,
  event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL,
  UNIQUE (stream_name, revision))`;

/** A random id of a UUID's form (the draws of `rnd`, so every layout writes the same ids). */
function idOf(rnd: () => number): string {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

/** Writes one layout's file from empty to its last window's end; the rate of each window. */
function runLayout(layout: Layout, p: LengthParams, at = p.at): LengthWindow[] {
  const dir = tempDir('sqlite-length');
  const db = new Database(path.join(dir, 'store.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma(`cache_size = -${p.cacheKb}`); // the adapter's page cache (64 MiB) unless BENCH_LENGTH_CACHE_KB says
    db.pragma(`wal_autocheckpoint = ${SQLITE_WAL_AUTOCHECKPOINT_PAGES}`); // and its checkpoint interval
    db.exec(layout === 'rows' ? ROWS_ONLY : SCHEMA);
    if (layout === 'staged') db.exec(STAGED);
    const insert = db.prepare(`INSERT INTO events (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const insertNew = layout === 'staged' ? db.prepare(`INSERT INTO events_new (global_position, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`) : null;
    const inOld = db.prepare('SELECT 1 FROM events WHERE event_id = ?').pluck();
    let staged = 0;
    let merges = 0;
    let position = 0;
    const rnd = prng(41);
    const spaceIds = Array.from({ length: p.spaces }, () => idOf(rnd));
    const revisions = new Int32Array(p.spaces).fill(-1);
    const write = db.transaction((n: number) => {
      const at = new Date().toISOString();
      if (insertNew && staged >= p.mergeRows) {
        db.exec('INSERT INTO events SELECT * FROM events_new ORDER BY global_position; DELETE FROM events_new');
        staged = 0;
        merges++;
      }
      for (let i = 0; i < n; i++) {
        const s = Math.floor(rnd() * p.spaces);
        const revision = ++revisions[s];
        const id = idOf(rnd);
        const data = JSON.stringify({ eventId: id, spaceId: spaceIds[s], userId: spaceIds[(s * 7) % p.spaces], feature: 'ai_backgrounds', medium: 'image', generations: 1 + (s % 4), occurredAt: at, platform: 'web' });
        position++;
        if (insertNew) {
          if (inOld.get(id) !== undefined) throw new Error(`event id ${id} stored twice`);
          insertNew.run(position, `space-${spaceIds[s]}`, revision, id, 'GenerationRecorded', data, '{}', at);
          staged++;
        } else insert.run(`space-${spaceIds[s]}`, revision, id, 'GenerationRecorded', data, '{}', at);
      }
    });
    const writeRows = (n: number) => {
      for (let done = 0; done < n; done += p.group) write.immediate(Math.min(p.group, n - done));
    };
    const windows: LengthWindow[] = [];
    let stored = 0;
    for (const a of at) {
      writeRows(a - stored); // not timed: the store grown to `at` rows
      const merges0 = merges;
      const written0 = writtenBytes();
      const cpu0 = process.cpuUsage();
      const t = performance.now();
      writeRows(p.window);
      const seconds = (performance.now() - t) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const written1 = writtenBytes();
      stored = a + p.window;
      windows.push({
        layout,
        at: a,
        rows: p.window,
        rate: p.window / seconds,
        cpuUsPerRow: (cpu.user + cpu.system) / p.window,
        kibWrittenPerRow: written0 === null || written1 === null ? null : (written1 - written0) / 1024 / p.window,
        merges: merges - merges0,
      });
    }
    const count = (t: string) => db.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number;
    const total = count('events') + (insertNew ? count('events_new') : 0);
    if (total !== stored) throw new Error(`${layout}: ${total} rows stored, ${stored} written`);
    return windows;
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What the runs of this benchmark said (the figures above are this run's; these are the sessions' own). */
export const SESSION_NOTES = [
  "**What it says (session 27).** The run recorded here (13:39, load average 1.0 at the start): the store's own schema wrote at 0.54x its empty-file rate once the file held 200,000 rows and at 0.30x once it held 1,200,000, with 10.5 and 18.1 KiB written per row against 3.6. Rows alone (no unique index) kept 1.15x to 1.43x. An earlier run the same hour (13:33, no warm-up file): the store's schema 0.57x and 0.31x. Each row puts a random key into each of the store's two unique B-trees (the event id; the stream with its revision). Once those trees are much larger than a commit's 2,000 rows, each row dirties a leaf page of each that no other row of its commit shares; the page is written to the WAL at the commit and again at the next checkpoint.",
  "So bench:flat's many-Spaces run (300,000 events into an empty store, against the baseline's 100,000) pays first for the store's length. The service over it (0.59x to 0.62x in session 26) is about as flat as the store's own schema at that length: 0.54x here, 0.51x in bench:flat's raw table. Its control row (300,000 events over 2,000 Spaces) says the same from the other side.",
  "**The staged layout**, the lever bench:flat's experiment pointed to, was measured here and not built. It was faster while the store was short: 35,087 against 23,724 rows/s at 200,000 rows in this run, 24,825 against 24,411 in the 13:33 run. It was no better once the store was long: 8,936 against 13,181 rows/s at 1,200,000 rows in this run, 12,500 against 13,200 at 13:33, with 17.7 against 18.1 KiB written per row. A merge size that grows with the store would make each merge a longer stall of every append behind it. It would put a new storage layout under every event for a gain at one length of the store.",
  "A page cache of 256 MiB instead of 64 (`BENCH_LENGTH_CACHE_KB=262144`, the store's schema only, one run at 13:36): 22,537 and 14,244 rows/s at 200,000 and 1,200,000 rows, against 23,724 and 13,181 here. So the length costs the pages written per commit, not reads the page cache would save. Shorter keys (a 16-byte id instead of 36 characters, an integer stream id instead of `space-<uuid>`) would make both trees smaller; that is a rewrite of every store file and is not measured here. PostgreSQL, whose server does the B-tree work on the other core, met bench:flat's target at 0.84x to 0.87x in sessions 25 and 26.",
].join(' ');

function params(scale: Scale): LengthParams {
  const smoke = scale === 'smoke';
  const env = (k: string, full: string, small: string) => process.env[k] ?? (smoke ? small : full);
  const at = env('BENCH_LENGTH_AT', '0,200000,1200000', '0,10000,30000').split(',').map(Number);
  if (at.some((a, i) => !Number.isSafeInteger(a) || a < 0 || (i > 0 && a <= at[i - 1]))) throw new TypeError('BENCH_LENGTH_AT: ascending integers >= 0');
  const window = Number(env('BENCH_LENGTH_WINDOW', '100000', '5000'));
  if (at.some((a, i) => i > 0 && a < at[i - 1] + window)) throw new TypeError('BENCH_LENGTH_AT: windows must not overlap (each at least BENCH_LENGTH_WINDOW after the previous)');
  return {
    at,
    window,
    spaces: Number(env('BENCH_LENGTH_SPACES', '100000', '2000')),
    group: 2_000,
    mergeRows: Number(env('BENCH_LENGTH_MERGE_ROWS', '20000', '2000')),
    layouts: env('BENCH_LENGTH_LAYOUTS', 'rows,store,staged', 'rows,store,staged').split(',') as Layout[],
    cacheKb: Number(env('BENCH_LENGTH_CACHE_KB', '65536', '65536')),
    warmUp: Number(env('BENCH_LENGTH_WARMUP', '20000', '0')),
  };
}

export async function runSqliteLengthBench(scale: Scale): Promise<BenchReport & { params: LengthParams; windows: LengthWindow[] }> {
  const p = params(scale);
  const windows: LengthWindow[] = [];
  for (const layout of p.layouts) {
    if (p.warmUp > 0) runLayout(layout, { ...p, window: p.warmUp }, [0]);
    for (const w of runLayout(layout, p)) {
      windows.push(w);
      log(`sqlite-length: ${layout} at ${fmt(w.at)} rows: ${fmt(w.rate)} rows/s, ${fmt(w.cpuUsPerRow, 1)} µs CPU per row, ${w.kibWrittenPerRow === null ? '?' : fmt(w.kibWrittenPerRow, 1)} KiB written per row${layout === 'staged' ? `, ${w.merges} merges` : ''}`);
    }
  }
  const find = (layout: Layout, at: number) => windows.find((w) => w.layout === layout && w.at === at);
  const label: Record<Layout, string> = {
    rows: 'rows only (no unique index): the raw baseline',
    store: "the store's schema",
    staged: `the store's schema with new rows staged, merged every ${fmt(p.mergeRows)} rows (not the store's layout)`,
  };
  const rows = windows.map((w) => {
    const first = find(w.layout, p.at[0]);
    const raw = find('rows', w.at);
    return `| ${label[w.layout]} | ${fmt(w.at)} | ${fmt(w.rate)} | ${first ? ratio(w.rate, first.rate) : 'n/a'} | ${raw ? ratio(w.rate, raw.rate) : 'n/a'} | ${fmt(w.cpuUsPerRow, 1)} | ${w.kibWrittenPerRow === null ? 'n/a' : fmt(w.kibWrittenPerRow, 1)} | ${w.layout === 'staged' ? w.merges : '-'} |`;
  });
  return {
    key: 'sqlite-length',
    title: "SQLite's own write rate as the store grows (the store's layout, and the staged layout tried as a lever)",
    command: scale === 'smoke' ? 'node -r @swc-node/register bench/sqlite-length.bench.ts --smoke' : 'npm run bench:sqlite-length',
    params: p,
    windows,
    lines: [
      `Raw SQLite writes, nothing of the service in between: rows of the store's columns (a random event id, a stream of ${fmt(p.spaces)} drawn at random with its next revision, an inbound-like JSON body), ${fmt(p.group)} rows per transaction, WAL, synchronous=FULL, a page cache of ${fmt(p.cacheKb / 1024)} MiB (the adapter's default: 64) and the adapter's WAL checkpoint interval. Each layout's file is written from empty (after ${fmt(p.warmUp)} rows into a file of its own, thrown away: not timed); the rate is measured over ${fmt(p.window)} rows starting when the file holds the row count of the second column. Ratios: to the same layout's first window (flat in the store's length is 1.00x), and to the rows-only layout's same window (the raw baseline of this run).`,
      '',
      `| layout | rows stored before | rows/s | ratio to its first window | ratio to rows only | µs CPU per row | KiB written per row | merges |`,
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      SESSION_NOTES,
    ],
    targets: [],
  };
}

if (require.main === module) runAsScript(runSqliteLengthBench);
