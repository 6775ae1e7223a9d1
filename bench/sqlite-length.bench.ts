/**
 * How the stores' own write rate moves as the store grows, with nothing of the service in between:
 * the same stream of usage-like rows (random event ids, `spaces` streams drawn at random, one
 * transaction of `group` rows; on SQLite WAL, synchronous=FULL, the adapter's page cache and
 * checkpoint interval) written into four layouts, each store from empty to its longest length, the
 * rate measured over a window of `window` rows starting at each of `at` rows already stored:
 *  - 'rows': the events table without its two unique indexes (appended rows alone): the raw
 *    baseline every other figure is a ratio to, window by window;
 *  - 'store': the store's own schema (`SCHEMA` of the SQLite adapter: unique event id, unique
 *    stream and revision);
 *  - 'staged': a layout the store does not have, measured as the lever bench:flat pointed to: the
 *    store's table, plus a small table of the same shape that takes the new rows and is merged into
 *    the large one in bulk every `mergeRows` rows (one INSERT ... SELECT ordered by position, then
 *    the small table emptied), so that a merge dirties each page of the large table's indexes once
 *    for many rows. Every new id is probed in the large table, as the store would have to;
 *  - 'postgres': the PostgreSQL store's own schema (its migrations) and insert statement, the same
 *    rows in transactions of `group` rows on the local server (its CPU and writes are the server's,
 *    so only the rate is given).
 * Each window's rate is given as a ratio to the same layout's first window (how flat the layout is
 * in the store's length) and to the 'rows' layout's same window.
 *
 *   node -r @swc-node/register bench/sqlite-length.bench.ts [--smoke]
 *   env: BENCH_LENGTH_AT (0,200000,1200000), BENCH_LENGTH_WINDOW (100000), BENCH_LENGTH_SPACES (100000),
 *        BENCH_LENGTH_MERGE_ROWS (20000), BENCH_LENGTH_LAYOUTS (rows,store,staged,postgres), BENCH_LENGTH_CACHE_KB (65536),
 *        BENCH_LENGTH_WARMUP (20000; 0 in the smoke form)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { createEventStore } from '@metering/event-store';
import { COLUMNS, SCHEMA } from '../libs/event-store/src/sqlite/sqlite-schema';
import { buildSql } from '../libs/event-store/src/postgres/postgres-sql';
import { prng } from '../test/support/workload/random';
import { type BenchReport, type Scale, fmt, log, ratio, rawSqliteFile, runAsScript, tempDir, writtenBytes } from './common';

export type Layout = 'rows' | 'store' | 'staged' | 'postgres';

export interface LengthWindow {
  layout: Layout;
  /** Rows stored when the window began. */
  at: number;
  rows: number;
  /** Rows written per second over the window. */
  rate: number;
  /** This process's CPU per row (null for 'postgres': its server does the work). */
  cpuUsPerRow: number | null;
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

/** The store's columns but its position (the rowid in the events table, given in the staged one). */
const WRITTEN = COLUMNS.replace('global_position, ', '');
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

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

/** One generated row: the same draws for every layout. */
interface GeneratedRow { stream: string; revision: number; id: string; data: string }

/** The rows every layout writes, in the same order (stream drawn at random, its next revision, a random id). */
function rowSource(p: LengthParams): (at: string) => GeneratedRow {
  const rnd = prng(41);
  const spaceIds = Array.from({ length: p.spaces }, () => idOf(rnd));
  const revisions = new Int32Array(p.spaces).fill(-1);
  return (at) => {
    const s = Math.floor(rnd() * p.spaces);
    const id = idOf(rnd);
    const data = JSON.stringify({ eventId: id, spaceId: spaceIds[s], userId: spaceIds[(s * 7) % p.spaces], feature: 'ai_backgrounds', medium: 'image', generations: 1 + (s % 4), occurredAt: at, platform: 'web' });
    return { stream: `space-${spaceIds[s]}`, revision: ++revisions[s], id, data };
  };
}

/**
 * Grows a store to each of `at` rows (not timed), then times `window` rows written by `writeRows`
 * (in transactions of `group`). CPU and bytes written are this process's: null for 'postgres'.
 */
async function measureWindows(layout: Layout, p: LengthParams, at: number[], writeRows: (n: number) => Promise<void>, merges: () => number): Promise<LengthWindow[]> {
  const local = layout !== 'postgres';
  const windows: LengthWindow[] = [];
  let stored = 0;
  for (const a of at) {
    await writeRows(a - stored); // not timed: the store grown to `a` rows
    const merges0 = merges();
    const written0 = local ? writtenBytes() : null;
    const cpu0 = process.cpuUsage();
    const t = performance.now();
    await writeRows(p.window);
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const written1 = local ? writtenBytes() : null;
    stored = a + p.window;
    windows.push({
      layout,
      at: a,
      rows: p.window,
      rate: p.window / seconds,
      cpuUsPerRow: local ? (cpu.user + cpu.system) / p.window : null,
      kibWrittenPerRow: written0 === null || written1 === null ? null : (written1 - written0) / 1024 / p.window,
      merges: merges() - merges0,
    });
  }
  return windows;
}

/**
 * 'postgres': the PostgreSQL store's own schema (its migrations, in a schema of its own) and its
 * insert statement (positions from the counter row, one multi-row insert), `group` rows per
 * transaction, as its group commit writes them; the server's fsync and synchronous_commit as set.
 */
async function runPostgres(p: LengthParams, at = p.at): Promise<LengthWindow[]> {
  const schema = `bench_length_${process.pid}_${Date.now()}`;
  const store = await createEventStore({ kind: 'postgres', url: PG_URL, schema });
  await store.close();
  const client = new Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const insert = buildSql(`"${schema}"`).insert;
    const next = rowSource(p);
    const writeRows = async (n: number) => {
      for (let done = 0; done < n; done += p.group) {
        const k = Math.min(p.group, n - done);
        const at = new Date().toISOString();
        const rows = Array.from({ length: k }, () => next(at));
        await client.query('BEGIN');
        await client.query(insert, [k, rows.map((r) => r.stream), rows.map((r) => r.revision), rows.map((r) => r.id), rows.map(() => 'GenerationRecorded'), rows.map((r) => r.data), rows.map(() => '{}')]);
        await client.query('COMMIT');
      }
    };
    const windows = await measureWindows('postgres', p, at, writeRows, () => 0);
    const stored = Number((await client.query(`SELECT count(*) AS n FROM "${schema}".events`)).rows[0].n);
    if (stored !== at[at.length - 1] + p.window) throw new Error(`postgres: ${stored} rows stored, ${at[at.length - 1] + p.window} written`);
    return windows;
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await client.end();
  }
}

/** Writes one layout's file from empty to its last window's end; the rate of each window. */
async function runLayout(layout: Exclude<Layout, 'postgres'>, p: LengthParams, at = p.at): Promise<LengthWindow[]> {
  const dir = tempDir('sqlite-length');
  // The adapter's page cache (64 MiB unless BENCH_LENGTH_CACHE_KB says) and checkpoint interval.
  const db = rawSqliteFile(path.join(dir, 'store.db'), { cacheKb: p.cacheKb });
  try {
    db.exec(layout === 'rows' ? ROWS_ONLY : SCHEMA);
    if (layout === 'staged') db.exec(STAGED);
    const insert = db.prepare(`INSERT INTO events (${WRITTEN}) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const insertNew = layout === 'staged' ? db.prepare(`INSERT INTO events_new (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`) : null;
    const inOld = db.prepare('SELECT 1 FROM events WHERE event_id = ?').pluck();
    let staged = 0;
    let merges = 0;
    let position = 0;
    const next = rowSource(p);
    const write = db.transaction((n: number) => {
      const at = new Date().toISOString();
      if (insertNew && staged >= p.mergeRows) {
        db.exec('INSERT INTO events SELECT * FROM events_new ORDER BY global_position; DELETE FROM events_new');
        staged = 0;
        merges++;
      }
      for (let i = 0; i < n; i++) {
        const r = next(at);
        position++;
        if (insertNew) {
          if (inOld.get(r.id) !== undefined) throw new Error(`event id ${r.id} stored twice`);
          insertNew.run(position, r.stream, r.revision, r.id, 'GenerationRecorded', r.data, '{}', at);
          staged++;
        } else insert.run(r.stream, r.revision, r.id, 'GenerationRecorded', r.data, '{}', at);
      }
    });
    const windows = await measureWindows(layout, p, at, (n) => {
      for (let done = 0; done < n; done += p.group) write.immediate(Math.min(p.group, n - done));
      return Promise.resolve();
    }, () => merges);
    const stored = at[at.length - 1] + p.window;
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
  "**Session 27.** Four runs this session. The store's schema against its empty file's rate, at 200,000 and 1,200,000 rows: 0.57x and 0.31x (13:33, no warm-up file), 0.54x and 0.30x (13:39), 0.55x and 0.31x (14:29, the first with PostgreSQL), with 10.5 and 18.1 KiB written per row against 3.6. Rows alone (no unique index) kept 1.15x to 1.56x.",
  "Each row puts a random key into each of the store's two unique B-trees (the event id; the stream with its revision). Once those trees are much larger than a commit's 2,000 rows, each row dirties a leaf page of each that no other row of its commit shares; the page is written to the WAL at the commit and again at the next checkpoint.",
  "So bench:flat's many-Spaces run (300,000 events into an empty store, against the baseline's 100,000) pays first for SQLite's length. The service over it (0.63x in session 27's bench:flat) is flatter than the store's own schema at that length (0.45x in the same run's raw table).",
  "**PostgreSQL** (14:29 run), the same rows through its store's schema and insert statement on the local server: 1.08x its empty table's rate at 200,000 rows and 0.82x at 1,200,000, where it wrote 24,200 rows/s against SQLite's 11,795. Its event-id index takes a 16-byte uuid, and its server's shared buffers and background writer absorb the page writes that SQLite makes on the writing thread at each commit and checkpoint.",
  "**The staged layout**, the lever bench:flat's experiment pointed to, was measured here and not built. It was faster while the store was short: at 200,000 rows 24,825 against 24,411 rows/s (13:33), 35,087 against 23,724 (13:39), 30,777 against 21,058 (14:29). It was no better once the store was long: at 1,200,000 rows 12,500 against 13,200, 8,936 against 13,181, and 11,955 against 11,795, with 17.7 against 18.1 KiB written per row. A merge size that grows with the store would make each merge a longer stall of every append behind it. It would put a new storage layout under every event for a gain at one length of the store.",
  "A page cache of 256 MiB instead of 64 (`BENCH_LENGTH_CACHE_KB=262144`, the store's schema only, one run at 13:36): 22,537 and 14,244 rows/s at 200,000 and 1,200,000 rows, against 23,724 and 13,181 at 13:39. So the length costs the pages written per commit, not reads that a larger page cache would save. Shorter SQLite keys (a 16-byte id instead of 36 characters, an integer stream id instead of `space-<uuid>`) would make both trees smaller; that is a rewrite of every store file and is not measured here.",
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
    layouts: env('BENCH_LENGTH_LAYOUTS', 'rows,store,staged,postgres', 'rows,store,staged,postgres').split(',') as Layout[],
    cacheKb: Number(env('BENCH_LENGTH_CACHE_KB', '65536', '65536')),
    warmUp: Number(env('BENCH_LENGTH_WARMUP', '20000', '0')),
  };
}

/** This run's figures in a sentence: each layout at its last window against its first, and against the store's schema. */
function thisRun(p: LengthParams, find: (layout: Layout, at: number) => LengthWindow | undefined): string {
  const first = p.at[0];
  const last = p.at[p.at.length - 1];
  const parts: string[] = [];
  const name: Record<Layout, string> = { rows: 'rows only', store: "SQLite's store schema", staged: 'the staged layout', postgres: "PostgreSQL's store schema" };
  const store = find('store', last);
  for (const layout of p.layouts) {
    const a = find(layout, first);
    const z = find(layout, last);
    if (!a || !z) continue;
    parts.push(`${name[layout]} ${ratio(z.rate, a.rate)} of its first window${layout !== 'store' && store ? ` (${ratio(z.rate, store.rate)} the store schema's rate there)` : ''}`);
  }
  return `**This run**, at ${fmt(last)} rows stored: ${parts.join('; ')}.`;
}

export async function runSqliteLengthBench(scale: Scale): Promise<BenchReport & { params: LengthParams; windows: LengthWindow[] }> {
  const p = params(scale);
  const windows: LengthWindow[] = [];
  for (const layout of p.layouts) {
    const run = (q: LengthParams, at?: number[]) => (layout === 'postgres' ? runPostgres(q, at) : runLayout(layout, q, at));
    if (p.warmUp > 0) await run({ ...p, window: p.warmUp }, [0]);
    for (const w of await run(p)) {
      windows.push(w);
      log(`sqlite-length: ${layout} at ${fmt(w.at)} rows: ${fmt(w.rate)} rows/s, ${w.cpuUsPerRow === null ? '?' : fmt(w.cpuUsPerRow, 1)} µs CPU per row, ${w.kibWrittenPerRow === null ? '?' : fmt(w.kibWrittenPerRow, 1)} KiB written per row${layout === 'staged' ? `, ${w.merges} merges` : ''}`);
    }
  }
  const find = (layout: Layout, at: number) => windows.find((w) => w.layout === layout && w.at === at);
  const label: Record<Layout, string> = {
    rows: 'SQLite: rows only (no unique index), the raw baseline',
    store: "SQLite: the SQLite store's schema",
    staged: `SQLite: the store's schema with new rows staged, merged every ${fmt(p.mergeRows)} rows (not the store's layout)`,
    postgres: "PostgreSQL: the PostgreSQL store's schema and insert",
  };
  const rows = windows.map((w) => {
    const first = find(w.layout, p.at[0]);
    const raw = find('rows', w.at);
    return `| ${label[w.layout]} | ${fmt(w.at)} | ${fmt(w.rate)} | ${first ? ratio(w.rate, first.rate) : 'n/a'} | ${raw ? ratio(w.rate, raw.rate) : 'n/a'} | ${w.cpuUsPerRow === null ? 'n/a (the server)' : fmt(w.cpuUsPerRow, 1)} | ${w.kibWrittenPerRow === null ? 'n/a' : fmt(w.kibWrittenPerRow, 1)} | ${w.layout === 'staged' ? w.merges : '-'} |`;
  });
  return {
    key: 'sqlite-length',
    title: "The stores' own write rate as they grow (SQLite's layouts, with the staged layout tried as a lever, and PostgreSQL's)",
    command: scale === 'smoke' ? 'node -r @swc-node/register bench/sqlite-length.bench.ts --smoke' : 'npm run bench:sqlite-length',
    params: p,
    windows,
    lines: [
      `Raw writes, nothing of the service in between: rows of the store's columns (a random event id, a stream of ${fmt(p.spaces)} drawn at random with its next revision, an inbound-like JSON body), ${fmt(p.group)} rows per transaction; PostgreSQL on the local server with the PostgreSQL store's schema and insert statement (fsync and synchronous_commit as the server has them); SQLite with WAL, synchronous=FULL, a page cache of ${fmt(p.cacheKb / 1024)} MiB (the adapter's default: 64) and the adapter's WAL checkpoint interval. Each layout's store is written from empty (after ${fmt(p.warmUp)} rows into a store of its own, thrown away: not timed); the rate is measured over ${fmt(p.window)} rows starting when the store holds the row count of the second column. Ratios: to the same layout's first window (flat in the store's length is 1.00x), and to the rows-only layout's same window (the raw baseline of this run).`,
      '',
      `| layout | rows stored before | rows/s | ratio to its first window | ratio to rows only | µs CPU per row | KiB written per row | merges |`,
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      thisRun(p, find),
      '',
      SESSION_NOTES,
    ],
    targets: [],
  };
}

if (require.main === module) runAsScript(runSqliteLengthBench);
