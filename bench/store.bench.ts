/**
 * Store appends for each adapter, next to raw inserts of the same rows in the same database.
 *
 * The rows: appends of 2 events (what a Space's batch usually holds) to streams picked at random
 * among 1,000. For each adapter, in the same run and database:
 *  - raw: a plain table with the same columns and unique indexes, one transaction per append
 *    (INSERT of the 2 rows), one at a time: what the database itself costs;
 *  - adapter, one append at a time (each its own transaction with the revision and id checks);
 *  - adapter, 100 appends in flight (SQLite: group commit into one transaction; PostgreSQL: the pool).
 * SQLite runs with synchronous=FULL (the service's default). KurrentDB runs where KURRENTDB_URL is
 * set; otherwise it is reported as skipped, loudly.
 *
 *   node -r @swc-node/register bench/store.bench.ts [--smoke]
 *   env: BENCH_STORE_EVENTS (40000), PG_URL (postgres://postgres@127.0.0.1:5432/test), KURRENTDB_URL
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Pool } from 'pg';
import { type EventStore, type NewEvent, SqliteEventStore, createEventStore } from '@metering/event-store';
import { prng } from '../test/support/workload/random';
import { type BenchReport, type Scale, fmt, log, ratio, runAsScript, tempDir } from './common';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Append {
  stream: string;
  events: NewEvent[];
}

function workload(n: number): Append[] {
  const rnd = prng(3);
  const next = new Map<string, number>();
  const out: Append[] = [];
  for (let i = 0; i < n / 2; i++) {
    const stream = `space-bench-${Math.floor(rnd() * 1000)}`;
    next.set(stream, (next.get(stream) ?? 0) + 2);
    const ev = (): NewEvent => ({
      id: randomUUID(),
      type: 'GenerationRecorded',
      data: { spaceId: stream.slice(6), feature: 'ai_backgrounds', generations: 1, credits: 2, occurredAt: new Date().toISOString(), pool: 'ai_image_credits' },
    });
    out.push({ stream, events: [ev(), ev()] });
  }
  return out;
}

/** Appends with exact expected revisions, `inFlight` at a time; returns events/s. */
async function viaAdapter(store: EventStore, appends: Append[], inFlight: number): Promise<number> {
  const revision = new Map<string, number>();
  const t = performance.now();
  for (let i = 0; i < appends.length; i += inFlight) {
    const wave = appends.slice(i, i + inFlight);
    // Within a wave a stream may appear twice: those appends wait for the previous one.
    const chains = new Map<string, Promise<void>>();
    for (const a of wave) {
      const prev = chains.get(a.stream) ?? Promise.resolve();
      chains.set(
        a.stream,
        prev.then(async () => {
          const r = revision.get(a.stream);
          const res = await store.append(a.stream, a.events, r === undefined ? 'no_stream' : r);
          revision.set(a.stream, res.nextExpectedRevision);
        }),
      );
    }
    await Promise.all(chains.values());
  }
  return (appends.length * 2) / ((performance.now() - t) / 1000);
}

async function sqliteSection(appends: Append[]): Promise<string[]> {
  const dir = tempDir('store');
  // Raw: the same rows into a table of the same shape, one transaction per append.
  const raw = new Database(path.join(dir, 'raw.db'));
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  raw.exec(`CREATE TABLE events (global_position INTEGER PRIMARY KEY AUTOINCREMENT, stream_name TEXT NOT NULL, revision INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL, UNIQUE (stream_name, revision))`);
  const insert = raw.prepare('INSERT INTO events (stream_name, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const rev = new Map<string, number>();
  const tx = raw.transaction((a: Append) => {
    let r = rev.get(a.stream) ?? -1;
    const at = new Date().toISOString();
    for (const e of a.events) insert.run(a.stream, ++r, e.id, e.type, JSON.stringify(e.data), '{}', at);
    rev.set(a.stream, r);
  });
  let t = performance.now();
  for (const a of appends) tx.immediate(a);
  const rawRate = (appends.length * 2) / ((performance.now() - t) / 1000);
  raw.close();
  const one = new SqliteEventStore(path.join(dir, 'one.db'), { synchronous: 'FULL' });
  const oneRate = await viaAdapter(one, appends, 1);
  await one.close();
  const many = new SqliteEventStore(path.join(dir, 'many.db'), { synchronous: 'FULL' });
  t = performance.now();
  const manyRate = await viaAdapter(many, appends, 100);
  await many.close();
  log(`sqlite: raw ${fmt(rawRate)}, adapter ${fmt(oneRate)}, adapter x100 ${fmt(manyRate)} events/s`);
  return [
    `| SQLite (synchronous=FULL) | ${fmt(rawRate)} | ${fmt(oneRate)} | **${ratio(oneRate, rawRate)}** | ${fmt(manyRate)} (${ratio(manyRate, rawRate)}) |`,
  ];
}

async function postgresSection(appends: Append[]): Promise<string[]> {
  const schema = `bench_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const pool = new Pool({ connectionString: PG_URL, max: 10 });
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    log(`skipped: no PostgreSQL at ${PG_URL} (${(err as Error).message})`);
    await pool.end();
    return [`| PostgreSQL | skipped: no PostgreSQL at ${PG_URL} | | | |`];
  }
  try {
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.raw_events (global_position BIGSERIAL PRIMARY KEY, stream_name TEXT NOT NULL, revision BIGINT NOT NULL,
      event_id UUID NOT NULL UNIQUE, type TEXT NOT NULL, data JSON NOT NULL, metadata JSON NOT NULL, recorded_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
      UNIQUE (stream_name, revision))`);
    const rev = new Map<string, number>();
    let t = performance.now();
    const client = await pool.connect();
    try {
      for (const a of appends) {
        let r = rev.get(a.stream) ?? -1;
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO ${schema}.raw_events (stream_name, revision, event_id, type, data, metadata) SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::json[], $6::json[])`,
          [a.events.map(() => a.stream), a.events.map(() => ++r), a.events.map((e) => e.id), a.events.map((e) => e.type), a.events.map((e) => JSON.stringify(e.data)), a.events.map(() => '{}')],
        );
        await client.query('COMMIT');
        rev.set(a.stream, r);
      }
    } finally {
      client.release();
    }
    const rawRate = (appends.length * 2) / ((performance.now() - t) / 1000);
    const one = await createEventStore({ kind: 'postgres', url: PG_URL, schema: `${schema}_one` });
    const oneRate = await viaAdapter(one, appends, 1);
    await one.close();
    const many = await createEventStore({ kind: 'postgres', url: PG_URL, schema: `${schema}_many` });
    t = performance.now();
    const manyRate = await viaAdapter(many, appends, 100);
    await many.close();
    log(`postgres: raw ${fmt(rawRate)}, adapter ${fmt(oneRate)}, adapter x100 ${fmt(manyRate)} events/s`);
    return [`| PostgreSQL (same server, same database) | ${fmt(rawRate)} | ${fmt(oneRate)} | **${ratio(oneRate, rawRate)}** | ${fmt(manyRate)} (${ratio(manyRate, rawRate)}) |`];
  } finally {
    for (const s of [schema, `${schema}_one`, `${schema}_many`]) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined);
    await pool.end();
  }
}

async function kurrentSection(appends: Append[]): Promise<string[]> {
  const url = process.env.KURRENTDB_URL;
  if (!url) {
    log('skipped: no KurrentDB (set KURRENTDB_URL to run the KurrentDB adapter benchmark)');
    return ['| KurrentDB | **skipped: no KurrentDB** (KURRENTDB_URL not set; no server can run on this machine) | | | |'];
  }
  const store = await createEventStore({ kind: 'kurrentdb', url });
  try {
    const oneRate = await viaAdapter(store, appends, 1);
    const manyRate = await viaAdapter(store, workload(appends.length * 2), 100);
    return [`| KurrentDB | n/a (no raw path) | ${fmt(oneRate)} | n/a | ${fmt(manyRate)} |`];
  } finally {
    await store.close();
  }
}

export async function runStoreBench(scale: Scale): Promise<BenchReport> {
  const smoke = scale === 'smoke';
  const N = Number(process.env.BENCH_STORE_EVENTS ?? (smoke ? 1_000 : 40_000));
  const appends = workload(N);
  const lines = [
    ...(await sqliteSection(appends)),
    ...(await postgresSection(appends)),
    ...(await kurrentSection(appends)),
  ];
  return {
    key: 'store',
    title: 'Store appends per adapter, next to raw inserts',
    command: smoke ? 'node -r @swc-node/register bench/store.bench.ts --smoke' : 'npm run bench:store',
    lines: [
      `${fmt(N)} events as appends of 2 events to streams picked at random among 1,000, each with its exact expected revision. Raw = the same rows into a plain table of the same shape and unique indexes, one transaction per append, one at a time.`,
      '',
      '| store | raw inserts (events/s) | adapter, one append at a time (events/s) | ratio | adapter, 100 appends in flight (events/s, ratio) |',
      '|---|---|---|---|---|',
      ...lines,
    ],
    targets: [],
  };
}

if (require.main === module) runAsScript(runStoreBench);
