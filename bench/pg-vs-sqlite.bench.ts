/**
 * PostgreSQL ingest next to SQLite ingest on the same workload (issue 14: PostgreSQL >= 0.7x).
 *
 * The service's own IngestService (decide, then one append per Space with its exact expected
 * revision, Spaces in parallel) is fed HTTP-like: batches of 500 inbound events, 4 batches in
 * flight, over 2,000 Spaces (one subscription each first, then usage). The same events go through
 * the same code on each store, one after the other, in the same process:
 *  - SQLite with synchronous=FULL (the service's default), WAL, group commit;
 *  - PostgreSQL on the local server (fsync and synchronous_commit as configured there), a fresh
 *    schema, group commit.
 * Every event must be accepted on both (checked), so both did the same work. Rates are events/s
 * from the first batch to the last outcome; the ratio PG/SQLite is the figure to compare. Rounds
 * alternate the stores (3 in the full form) and the best of each counts: the machine is shared.
 *
 *   node -r @swc-node/register bench/pg-vs-sqlite.bench.ts [--smoke]
 *   env: BENCH_PGSQ_EVENTS (100000), BENCH_PGSQ_SPACES (2000), BENCH_PGSQ_ROUNDS (3), PG_URL (postgres://postgres@127.0.0.1:5432/test)
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from 'pg';
import { type EventStore, SqliteEventStore, createEventStore } from '@metering/event-store';
import type { InboundEvent } from '@metering/domain';
import { CatalogService } from '../apps/metering/src/catalog/catalog.service';
import { systemClock, systemIds } from '../apps/metering/src/infra/clock';
import { IngestService } from '../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../apps/metering/src/ingest/space-repository';
import { flatStream } from '../test/support/workload/flat';
import { type BenchReport, type Scale, fmt, log, ratio, runAsScript, tempDir } from './common';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BATCH = 500;
const IN_FLIGHT = 4;
const TARGET = 0.7;
const ROUNDS_DEFAULT = { full: 3, smoke: 1 };

interface Run {
  rate: number;
  seconds: number;
  accepted: number;
}

/** Feeds every batch through IngestService, IN_FLIGHT batches at a time; events/s. */
async function ingestAll(store: EventStore, batches: InboundEvent[][], spaces: number): Promise<Run> {
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store, { maxCached: spaces + 1_000 }), catalog, systemClock, systemIds);
  let accepted = 0;
  let other: string | null = null;
  let next = 0;
  const t = performance.now();
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      for (const o of await ingest.ingest(batch)) {
        if (o.outcome === 'accepted') accepted++;
        else other ??= JSON.stringify(o);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - t) / 1000;
  const total = batches.reduce((n, b) => n + b.length, 0);
  if (accepted !== total) throw new Error(`only ${accepted} of ${total} events accepted; first other outcome: ${other}`);
  return { rate: total / seconds, seconds, accepted };
}

export async function runPgVsSqliteBench(scale: Scale): Promise<BenchReport & { sqlite: number; postgres: number | null }> {
  const smoke = scale === 'smoke';
  const N = Number(process.env.BENCH_PGSQ_EVENTS ?? (smoke ? 3_000 : 100_000));
  const S = Number(process.env.BENCH_PGSQ_SPACES ?? (smoke ? 200 : 2_000));
  const ROUNDS = Number(process.env.BENCH_PGSQ_ROUNDS ?? ROUNDS_DEFAULT[scale]);
  const all = [...flatStream(N, S, 14)];
  const batches: InboundEvent[][] = [];
  for (let i = 0; i < all.length; i += BATCH) batches.push(all.slice(i, i + BATCH));

  const schemaBase = `bench_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const admin = new Pool({ connectionString: PG_URL, max: 1 });
  let pgSettings = '';
  try {
    const { rows } = await admin.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version') ORDER BY name`,
    );
    pgSettings = rows.map((r) => `${r.name}=${r.setting}`).join(', ');
  } catch (err) {
    log(`skipped: no PostgreSQL at ${PG_URL} (${(err as Error).message})`);
  }
  // Rounds alternate the stores (SQLite, PostgreSQL, SQLite, ...) so a burst of load from the
  // neighbours hits both; each round starts from an empty store. The best round of each counts.
  const sqliteRuns: Run[] = [];
  const pgRuns: Run[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const dir = tempDir('pgsq');
      const sqliteStore = new SqliteEventStore(path.join(dir, 'metering.db'), { synchronous: 'FULL' });
      try {
        sqliteRuns.push(await ingestAll(sqliteStore, batches, S));
      } finally {
        await sqliteStore.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
      log(`round ${round + 1}: sqlite (FULL) ${fmt(sqliteRuns[round].rate)} events/s (${fmt(sqliteRuns[round].seconds, 1)} s)`);
      if (!pgSettings) continue;
      const schema = `${schemaBase}_${round}`;
      const store = await createEventStore({ kind: 'postgres', url: PG_URL, schema });
      try {
        pgRuns.push(await ingestAll(store, batches, S));
      } finally {
        await store.close();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      }
      log(`round ${round + 1}: postgres ${fmt(pgRuns[round].rate)} events/s (${fmt(pgRuns[round].seconds, 1)} s), ratio ${ratio(pgRuns[round].rate, sqliteRuns[round].rate)}`);
    }
  } finally {
    await admin.end();
  }
  const best = (runs: Run[]) => runs.reduce((a, b) => (b.rate > a.rate ? b : a));
  const sqlite = best(sqliteRuns);
  const postgres = pgRuns.length ? best(pgRuns) : null;
  const rounds = (runs: Run[]) => runs.map((r) => fmt(r.rate)).join(' / ');
  const lines = [
    `${fmt(all.length)} inbound events over ${fmt(S)} Spaces (one subscription each, then generations and batch exports) through IngestService, in batches of ${BATCH}, ${IN_FLIGHT} batches in flight, the same events on each store in the same process; every event accepted on both.`,
    '',
    `${ROUNDS} round(s), alternating the stores, each from an empty store; the best round of each store counts (every round is listed).`,
    '',
    '| store | events/s (best round) | seconds | every round (events/s) | ratio to SQLite |',
    '|---|---|---|---|---|',
    `| SQLite (synchronous=FULL, WAL, group commit) | ${fmt(sqlite.rate)} | ${fmt(sqlite.seconds, 1)} | ${rounds(sqliteRuns)} | 1.00x |`,
    postgres
      ? `| PostgreSQL (local server: ${pgSettings}; group commit) | ${fmt(postgres.rate)} | ${fmt(postgres.seconds, 1)} | ${rounds(pgRuns)} | **${ratio(postgres.rate, sqlite.rate)}** |`
      : `| PostgreSQL | skipped: no PostgreSQL at ${PG_URL} | | | |`,
    ...(postgres ? ['', `Ratio per round: ${pgRuns.map((r, i) => ratio(r.rate, sqliteRuns[i].rate)).join(' / ')}.`] : []),
  ];
  return {
    key: 'pg-vs-sqlite',
    title: 'PostgreSQL ingest next to SQLite ingest (same workload, IngestService)',
    command: smoke ? 'node -r @swc-node/register bench/pg-vs-sqlite.bench.ts --smoke' : 'npm run bench:pg-vs-sqlite',
    lines,
    targets: postgres
      ? [{ what: `PostgreSQL ingest >= ${TARGET}x SQLite ingest`, ok: postgres.rate >= TARGET * sqlite.rate, detail: `${ratio(postgres.rate, sqlite.rate)} (${fmt(postgres.rate)} vs ${fmt(sqlite.rate)} events/s)` }]
      : [],
    sqlite: sqlite.rate,
    postgres: postgres?.rate ?? null,
  };
}

if (require.main === module) runAsScript(runPgVsSqliteBench);
