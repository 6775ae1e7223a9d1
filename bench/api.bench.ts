/**
 * Entitlement check and usage query under load, next to a bare endpoint of the same server, on
 * SQLite and on PostgreSQL (issue 14 part 4).
 *
 * For each store, S Spaces (a subscription each, and usage) are seeded through the service's own
 * ingest path; the built service (dist) starts on them and projects them; then autocannon (in this
 * process, on the other core) drives, one after the other:
 *  - a cold pass: one entitlement check per Space, in order (each one a miss of the in-memory
 *    entitlement view: read model + stream tail), reported on its own;
 *  - GET /health/live: the bare endpoint (no store, no domain), the server's own ceiling here;
 *  - POST /v1/spaces/:id/entitlements/check on random Spaces (the view is warm: every Space was
 *    checked once): a fixed set of min(S, 16,384) requests over Spaces drawn at random, built once
 *    before the load, each connection cycling through its own share of the set;
 *  - GET /v1/spaces/:id/usage on random Spaces (a set built the same way);
 *  - the check at a fixed rate again while usage events are POSTed to the same process
 *    (`ingestFlood`): what a burst of ingest does to the checks an all-roles process serves;
 *  - last, a second process with ROLES=api on the same store (SQLite: the same DATA_DIR), its view
 *    warmed by one pass over the check set, and the fixed-rate check sent to it while the same
 *    flood goes to the first: the checks of a deployment that keeps the api role apart.
 * Like the bare request, which autocannon builds once, the check requests cost the client no
 * per-request function (autocannon runs in this process, on the same two cores as the service).
 * The bare, check and usage loads run for the same duration and connections each; ratios are to
 * the bare endpoint of the same server in the same run.
 *
 *   node -r @swc-node/register bench/api.bench.ts [--smoke]
 *   env: BENCH_API_SPACES (100000), BENCH_API_SECONDS (10), BENCH_API_CONNECTIONS (16),
 *        BENCH_API_STORES (sqlite,postgres), PG_URL (postgres://postgres@127.0.0.1:5432/test)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { type EventStore, SqliteEventStore, createEventStore } from '@metering/event-store';
import {
  type BenchReport,
  type Scale,
  cpuSecondsOf,
  fmt,
  log,
  ratio,
  rssOf,
  runAsScript,
  startService,
  tempDir,
} from './common';
import { seedStore } from './seed';
import { type Segment, checkEntitlement, defaultCatalogJson, parseCatalog, periodAt } from '@metering/domain';
import { Entry } from '../apps/metering/src/projection/entitlement-view-entry';
import { benchSpaceId as spaceIdOf, flatStream } from '../test/support/workload/flat';
import { prng } from '../test/support/workload/random';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon');

interface Load {
  rps: number;
  /** Service CPU time (user + system) per request, µs. */
  cpuUs: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
}

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
type StoreName = 'sqlite' | 'postgres';
const STORE_TITLE: Record<StoreName, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

export interface StoreRun {
  store: StoreName;
  /** null: skipped (reason in `skipped`). */
  bare: Load | null;
  check: Load | null;
  usage: Load | null;
  cold: Load | null;
  skipped?: string;
  /** Every (bare, check) round; bare and check above are the round with the median ratio. */
  rounds?: { bare: Load; check: Load }[];
  /** Both endpoints at FIXED_RATE requests/s (4 connections): the latency of a request, not of a queue. */
  bareAtRate?: Load;
  checkAtRate?: Load;
  /** The check at FIXED_RATE again while POST /v1/events ingests into the same process (see `ingestFlood`). */
  checkUnderIngest?: Load;
  /** Usage events/s that ingest reached meanwhile. */
  ingestRate?: number;
  /**
   * The same flood into the same process, the checks served by a second process with ROLES=api on
   * the same store (SQLite: the same DATA_DIR): the deployment that keeps checks fast during ingest.
   */
  checkApiProcess?: Load;
  /** Usage events/s POSTed to the first process meanwhile. */
  apiProcessIngestRate?: number;
  rssMiB: number;
  answer: Record<string, unknown> | null;
}

/**
 * What autocannon sends: one request built once (the bare endpoint), or a fixed set of pre-built
 * requests that each connection cycles through from its own starting point (no per-request
 * function in the client: autocannon, on the same two cores, does the same work per request for
 * both endpoints), or a request rebuilt per call by `setupRequest` (the cold pass: every Space once).
 */
type Requests = Record<string, unknown> | { set: Record<string, unknown>[] };

async function load(url: string, seconds: number, connections: number, request: Requests, pid: number, amount?: number, overallRate?: number): Promise<Load> {
  const cpu0 = cpuSecondsOf(pid);
  let clients = 0;
  const set = Array.isArray(request.set) ? (request.set as Record<string, unknown>[]) : null;
  const requests =
    set !== null
      ? {
          requests: [set[0]],
          // Connection k cycles through its own k-th share of the set (built once per connection), so
          // the connections ask about different Spaces at any moment.
          setupClient: (client: { setRequests(r: Record<string, unknown>[]): void }) => {
            const k = clients++ % connections;
            const share = set.slice(Math.floor((k * set.length) / connections), Math.floor(((k + 1) * set.length) / connections));
            client.setRequests((share.length ? share : set).map((r) => ({ ...r })));
          },
        }
      : { requests: [request] };
  const result = await autocannon({ url, connections, ...(amount ? { amount } : { duration: seconds }), ...(overallRate ? { overallRate } : {}), ...requests });
  const cpu = cpuSecondsOf(pid) - cpu0;
  return {
    rps: result.requests.average,
    cpuUs: result.requests.total ? (cpu / result.requests.total) * 1e6 : 0,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Pre-built requests over random Spaces (a fixed set: min(S, SET_SIZE) requests, in random order). */
const SET_SIZE = 16_384;

/** Requests/s of the fixed-rate latency runs (well under what either endpoint sustains here). */
const FIXED_RATE = 2000;

/**
 * Usage events for the seeded Spaces POSTed to the service (/v1/events) in batches of 500, 4 in
 * flight, until `stop()`: what a burst of usage does to the checks served by the same process. The
 * events come from the seeding's generator (fresh ids, within the last 10 days), so each is accepted.
 */
async function ingestFlood(base: string, S: number, stop: () => boolean): Promise<{ events: number; seconds: number }> {
  const stream = flatStream(Number.MAX_SAFE_INTEGER, S, 99);
  for (let i = 0; i < S; i++) stream.next(); // the generator's subscriptions: the Spaces have theirs
  let events = 0;
  const t = performance.now();
  const worker = async () => {
    while (!stop()) {
      const batch = Array.from({ length: 500 }, () => stream.next().value);
      const r = await fetch(`${base}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
      const body = (await r.json()) as { accepted?: number };
      if (r.status !== 200 || body.accepted !== batch.length) throw new Error(`POST /v1/events: ${r.status} ${JSON.stringify(body).slice(0, 300)}`);
      events += batch.length;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { events, seconds: (performance.now() - t) / 1000 };
}

/**
 * The fixed-rate checks (`checksAtRate`) while `ingestFlood` POSTs usage to `ingestBase`: their load
 * and the usage events/s reached meanwhile. The flood stops when the checks end, or fail.
 */
async function checksDuringFlood(checksAtRate: () => Promise<Load>, ingestBase: string, S: number): Promise<{ checks: Load; ingestRate: number }> {
  let flooding = true;
  const flood = ingestFlood(ingestBase, S, () => !flooding);
  flood.catch(() => undefined); // awaited below; a failure is not unhandled while the check load runs
  let checks: Load;
  try {
    checks = await checksAtRate();
  } finally {
    flooding = false;
  }
  const ingested = await flood;
  return { checks, ingestRate: ingested.events / ingested.seconds };
}

/**
 * A second process of the built service with ROLES=api on the first one's store (the same
 * environment; SQLite: the same DATA_DIR, so the same files), its entitlement view warmed by one
 * pass over the check set; then the fixed-rate check (`checksAtRate`) sent to it while
 * `ingestFlood` POSTs usage to the first process (`ingestBase`).
 */
async function checksOnApiProcess(
  env: Record<string, string>,
  dataDir: string,
  checksAtRate: (base: string, servedBy: number) => Promise<Load>,
  checks: Requests,
  ingestBase: string,
  S: number,
  seconds: number,
  connections: number,
): Promise<{ checkApiProcess: Load; apiProcessIngestRate: number }> {
  const front = await startService({ ...env, ROLES: 'api' }, dataDir);
  try {
    const servedBy = front.proc.pid as number;
    const warm = await load(front.base, seconds, connections, checks, servedBy, Math.min(S, SET_SIZE));
    if (warm.errors || warm.non2xx) throw new Error(`api-only process, warming its view: ${warm.errors} errors, ${warm.non2xx} non-2xx answers`);
    const { checks: checkApiProcess, ingestRate } = await checksDuringFlood(() => checksAtRate(front.base, servedBy), ingestBase, S);
    return { checkApiProcess, apiProcessIngestRate: ingestRate };
  } finally {
    await front.stop();
  }
}

/**
 * Rounds of (bare, check): 5 at full scale (on a quiet machine single rounds ranged from 0.54x to
 * 0.79x in one run: the median of 5 moves less than the median of 3), 1 in the smoke form.
 */
const roundsOf = (seconds: number) => (seconds >= 2 ? 5 : 1);

async function runOnStore(store: StoreName, S: number, seconds: number, connections: number): Promise<StoreRun> {
  const dataDir = tempDir('api');
  const env: Record<string, string> = { EVENT_STORE: store, LOG_LEVEL: 'warn' };
  let schema: string | null = null;
  let admin: Pool | null = null;
  let seeded: EventStore;
  if (store === 'sqlite') seeded = new SqliteEventStore(path.join(dataDir, 'metering.db'), { synchronous: 'NORMAL' });
  else {
    admin = new Pool({ connectionString: PG_URL, max: 1 });
    try {
      await admin.query('SELECT 1');
    } catch (err) {
      await admin.end().catch(() => undefined);
      return { store, bare: null, check: null, usage: null, cold: null, skipped: `no PostgreSQL at ${PG_URL} (${(err as Error).message})`, rssMiB: 0, answer: null };
    }
    schema = `bench_api_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
    seeded = await createEventStore({ kind: 'postgres', url: PG_URL, schema });
    Object.assign(env, { DATABASE_URL: PG_URL, PG_SCHEMA: schema });
  }
  try {
    log(`${store}: seeding ${fmt(S)} Spaces (a subscription and 2 usage events each)`);
    const t0 = performance.now();
    try {
      await seedStore(seeded, 3 * S, S);
    } finally {
      await seeded.close();
    }
    log(`${store}: seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const t1 = performance.now();
    const svc = await startService(env, dataDir);
    log(`${store}: service up and projected in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    try {
      const pid = svc.proc.pid as number;
      const rnd = prng(42);
      const randomSpace = () => spaceIdOf(Math.floor(rnd() * S));
      const checkBody = JSON.stringify({ feature: 'ai_backgrounds', generations: 1 });
      const checkRequest = (spaceId: string) => ({ method: 'POST', path: `/v1/spaces/${spaceId}/entitlements/check`, headers: { 'content-type': 'application/json' }, body: checkBody });
      const randomSet = (make: (spaceId: string) => Record<string, unknown>) => ({ set: Array.from({ length: Math.min(S, SET_SIZE) }, () => make(randomSpace())) });
      const checks = randomSet(checkRequest);
      const usages = randomSet((spaceId) => ({ method: 'GET', path: `/v1/spaces/${spaceId}/usage` }));
      if (seconds >= 2) await load(svc.base, 1, connections, { method: 'GET', path: '/health/live' }, pid); // warm-up
      // The cold pass: every Space once, in order (a miss each), so the measured loads below see the
      // steady state of a running service whose view holds the Spaces being asked about.
      let next = 0;
      const cold = await load(
        svc.base,
        seconds,
        connections,
        { ...checkRequest(spaceIdOf(0)), setupRequest: (req: Record<string, unknown>) => Object.assign(req, { path: `/v1/spaces/${spaceIdOf(next++ % S)}/entitlements/check` }) },
        pid,
        S,
      );
      log(`${store}: cold pass (${fmt(S)} misses): ${fmt(cold.rps)} req/s, p99 ${cold.p99} ms`);
      if (admin !== null && schema !== null) {
        // Not timed: the seeding and the projection just wrote every table of the schema. Without a
        // vacuum, PostgreSQL's work after those bulk writes (visibility and hint bits on first reads,
        // autovacuum, statistics) fell in the measured loads below, on the two cores the service and
        // autocannon share: three runs on 2026-12-01 (this build and the previous one alike) had the
        // bare endpoint at 8,000-13,000 requests/s with a fixed-rate p99 of 2-16 ms, against
        // 21,000-22,000 and 1 ms with it. A vacuumed database is the steady state measured here.
        const tables = (await admin.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [schema])).rows as { tablename: string }[];
        for (const t of tables) await admin.query(`VACUUM (ANALYZE) ${schema}.${t.tablename}`);
        log(`${store}: ${tables.length} tables vacuumed and analysed`);
      }
      // Rounds of (bare, check) back to back: the ratio of each round compares two loads taken a few
      // seconds apart (the neighbours' load drifts); the round with the median ratio is reported.
      const rounds: { bare: Load; check: Load }[] = [];
      for (let round = 0; round < roundsOf(seconds); round++) {
        const b = await load(svc.base, seconds, connections, { method: 'GET', path: '/health/live' }, pid);
        const c = await load(svc.base, seconds, connections, checks, pid);
        rounds.push({ bare: b, check: c });
        log(`${store}: round ${round + 1}: bare ${fmt(b.rps)} req/s (p99 ${b.p99} ms), check ${fmt(c.rps)} req/s (p99 ${c.p99} ms), ratio ${ratio(c.rps, b.rps)}`);
      }
      const median = [...rounds].sort((x, y) => x.check.rps / x.bare.rps - y.check.rps / y.bare.rps)[Math.floor(rounds.length / 2)];
      const { bare, check } = median;
      // Latency at a fixed rate under saturation: at full speed, 16 connections queue (mean latency =
      // connections / throughput), so p99 there measures the queue, not the request.
      const bareAtRate = await load(svc.base, seconds, 4, { method: 'GET', path: '/health/live' }, pid, undefined, FIXED_RATE);
      // At a fixed rate the client's cost per request does not matter (it is far from saturated), so
      // each check is built by a setupRequest on a random Space. With the pre-built set the p99 at
      // this rate was 33 ms with the previous service build and 40 ms with this one (20,000 Spaces,
      // PostgreSQL), against 1 ms with setupRequest: it came from the client, not the service.
      const checksAtRate = (base = svc.base, servedBy = pid) =>
        load(
          base,
          seconds,
          4,
          { ...checkRequest(spaceIdOf(0)), setupRequest: (req: Record<string, unknown>) => Object.assign(req, { path: `/v1/spaces/${randomSpace()}/entitlements/check` }) },
          servedBy,
          undefined,
          FIXED_RATE,
        );
      const checkAtRate = await checksAtRate();
      log(`${store}: at ${fmt(FIXED_RATE)} requests/s: bare p99 ${bareAtRate.p99} ms, check p99 ${checkAtRate.p99} ms`);
      const usage = await load(svc.base, seconds, connections, usages, pid);
      log(`${store}: usage: ${fmt(usage.rps)} req/s`);
      // One answer checked for content, so a fast error page cannot pass for a fast answer.
      const sample = await fetch(`${svc.base}/v1/spaces/${spaceIdOf(1)}/entitlements/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: checkBody });
      const body = (await sample.json()) as { allowed?: unknown; limit?: unknown; asOf?: unknown };
      if (typeof body.allowed !== 'boolean' || typeof body.limit !== 'number' || typeof body.asOf !== 'string')
        throw new Error(`unexpected entitlement answer: ${JSON.stringify(body)}`);
      // After the loads above (it leaves the projection behind for a while): the fixed-rate check
      // again, with a burst of usage POSTed to the same process meanwhile.
      const { checks: checkUnderIngest, ingestRate } = await checksDuringFlood(checksAtRate, svc.base, S);
      log(`${store}: at ${fmt(FIXED_RATE)} requests/s while ${fmt(ingestRate)} usage events/s were POSTed: check p99 ${checkUnderIngest.p99} ms`);
      // The same flood into this process, the checks served by a second one with the api role alone.
      const { checkApiProcess, apiProcessIngestRate } = await checksOnApiProcess(env, dataDir, checksAtRate, checks, svc.base, S, seconds, connections);
      log(`${store}: at ${fmt(FIXED_RATE)} requests/s on an api-only process while ${fmt(apiProcessIngestRate)} usage events/s were POSTed to the first: check p50 ${checkApiProcess.p50} ms, p99 ${checkApiProcess.p99} ms`);
      for (const [what, l] of [['cold', cold], ['usage', usage], ['bare at rate', bareAtRate], ['check at rate', checkAtRate], ['check under ingest', checkUnderIngest], ['check on the api-only process', checkApiProcess], ...rounds.flatMap((r) => [['bare', r.bare], ['check', r.check]] as const)] as const)
        if (l.errors || l.non2xx) throw new Error(`${store} ${what}: ${l.errors} errors, ${l.non2xx} non-2xx answers`);
      return { store, bare, check, usage, cold, rounds, bareAtRate, checkAtRate, checkUnderIngest, ingestRate, checkApiProcess, apiProcessIngestRate, rssMiB: rssOf(pid).current / 2 ** 20, answer: body };
    } finally {
      await svc.stop();
    }
  } finally {
    if (admin) {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await admin.end().catch(() => undefined);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The check's own work, in process and without sockets: for S view entries (a monthly plan each,
 * anchors spread over 60 days, one usage row), lookups in random order of the entry, its running
 * period and the domain's `checkEntitlement`, as the route does on a hit; next to a raw baseline
 * in the same loop: the Map lookup alone (the memory access every check pays). Medians of 7 rounds.
 */
export function checkPathInProcess(S: number): { checkNs: number; lookupNs: number } {
  const catalog = parseCatalog(defaultCatalogJson);
  const now = Date.now();
  const entries = new Map<string, Entry>();
  for (let i = 0; i < S; i++) {
    const anchorAt = now - (i % 60) * 86_400_000 - 1000;
    const timeline: Segment[] = [{ effectiveAt: anchorAt, plan: 'pro', cycle: 'monthly', limits: { ai_image_credits: 125, ai_video_credits: 25, batch_exports: 500 }, anchorAt, family: 'monthly', keepsUsage: true }];
    const start = periodAt(timeline, now).start;
    const used = { ai_image_credits: i % 100, ai_video_credits: 0, batch_exports: 0 };
    entries.set(spaceIdOf(i), new Entry({ spaceId: spaceIdOf(i), timeline, lastResetAt: null, nextResetAt: null, revision: 1 }, start, [{ start, end: null, used, usageEvents: 1 }]));
  }
  const rnd = prng(7);
  // Keys as a request brings them: fresh strings, not the Map's own.
  const keys = Array.from({ length: 1 << 16 }, () => `${spaceIdOf(Math.floor(rnd() * S))}`.split('').join(''));
  const request = { kind: 'generation' as const, feature: 'ai_backgrounds', generations: 1 };
  let sink = 0;
  const time = (n: number, check: boolean) => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const e = entries.get(keys[i & 0xffff]) as Entry;
      if (!check) {
        sink += e.fromPeriod;
        continue;
      }
      if (e.periodAt(now).start !== e.fromPeriod) throw new Error('check path: the period moved');
      const r = checkEntitlement(e, request, now, catalog);
      if (r.ok) sink += r.answer.remaining;
    }
    return Number(process.hrtime.bigint() - t) / n;
  };
  const n = Math.min(300_000, 3 * S + 1000);
  time(n, true);
  time(n, false);
  const checks: number[] = [];
  const lookups: number[] = [];
  for (let k = 0; k < 7; k++) {
    checks.push(time(n, true));
    lookups.push(time(n, false));
  }
  if (sink === 0) throw new Error('check path: nothing measured');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[3];
  return { checkNs: median(checks), lookupNs: median(lookups) };
}

export async function runApiBench(scale: Scale): Promise<BenchReport & { runs: StoreRun[]; inProcess: { checkNs: number; lookupNs: number } }> {
  const smoke = scale === 'smoke';
  const S = Number(process.env.BENCH_API_SPACES ?? (smoke ? 200 : 100_000));
  const seconds = Number(process.env.BENCH_API_SECONDS ?? (smoke ? 0.5 : 10));
  const connections = Number(process.env.BENCH_API_CONNECTIONS ?? 16);
  const stores = (process.env.BENCH_API_STORES ?? 'sqlite,postgres').split(',').map((x) => x.trim()) as StoreName[];
  const loadAvg = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const runs: StoreRun[] = [];
  for (const store of stores) runs.push(await runOnStore(store, S, seconds, connections));
  const inProcess = checkPathInProcess(S);
  log(`in process: entry lookup + period + checkEntitlement ${fmt(inProcess.checkNs)} ns, the lookup alone ${fmt(inProcess.lookupNs)} ns`);
  const loadAvgEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const row = (what: string, l: Load, bare: Load | null, bold = false) =>
    `| ${what} | ${bold ? '**' : ''}${fmt(l.rps)}${bold ? '**' : ''} | ${l.p50} ms | ${bold ? '**' : ''}${l.p99} ms${bold ? '**' : ''} | ${bare ? `${bold ? '**' : ''}${ratio(l.rps, bare.rps)}${bold ? '**' : ''}` : 'n/a (fixed rate)'} | ${fmt(l.cpuUs)} µs (${fmt(1e6 / l.cpuUs)}/CPU-s) |`;
  const lines: string[] = [
    `${fmt(S)} Spaces seeded through the ingest path (${fmt(3 * S)} inbound events) into each store; the built service (all roles, \`ENTITLEMENT_VIEW_MAX_SPACES\` and \`ENTITLEMENT_VIEW_POLL_MS\` at their defaults: 100,000 and 100 ms) on it; autocannon in the bench process, ${connections} connections. Per store: a cold pass (one check per Space, in order: each a miss of the entitlement view), on PostgreSQL a VACUUM (ANALYZE) of the schema's tables after it (not timed: without it the work PostgreSQL does after bulk writes fell in the measured loads, the bare endpoint at 8,000-13,000 requests/s with a fixed-rate p99 of 2-16 ms in three runs of this build and the previous one, against 21,000-22,000 and 1 ms after it), then ${roundsOf(seconds)} round(s) of ${seconds} s of the bare endpoint followed by ${seconds} s of the check on random Spaces (the table shows the round with the median ratio; every round is listed below it), then ${seconds} s of each endpoint at a fixed ${fmt(FIXED_RATE)} requests/s over 4 connections (there each check is built per request by a setupRequest on a random Space: with the pre-built set the check's p99 at this rate was 33 ms with the previous service build and 40 ms with this one, 20,000 Spaces on PostgreSQL, against 1 ms with setupRequest, and 49 and 72 ms in a full run: that latency came from the client) (the latency of a request rather than of a queue: at full speed, mean latency = connections / throughput), then ${seconds} s of the usage query on random Spaces, then the fixed-rate check again for ${seconds} s while the bench POSTs usage events for the seeded Spaces to the same process (/v1/events, batches of 500, 4 in flight: a burst of ingest next to the checks), and last a second process of the service with ROLES=api on the same store (SQLite: the same DATA_DIR), its view warmed by one pass over the check set, answering the fixed-rate check for ${seconds} s while the same burst goes to the first process. The bare request is built once; the check and usage requests are a fixed set of ${fmt(Math.min(S, SET_SIZE))} requests over Spaces drawn at random, built before the load, each connection cycling through its own share (no per-request function in the client, which shares the two cores with the service). Load average (1, 5, 15 min) at the start ${loadAvg}, at the end ${loadAvgEnd}.`,
    '',
    '| store | endpoint | requests/s | p50 | p99 | ratio to bare | service CPU per request |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    const t = STORE_TITLE[r.store];
    if (!r.bare || !r.check || !r.usage || !r.cold) {
      lines.push(`| ${t} | **skipped: ${r.skipped}** | | | | | |`);
      continue;
    }
    lines.push(
      row(`${t} | GET /health/live (bare endpoint, same server)`, r.bare, r.bare),
      row(`${t} | POST /v1/spaces/:id/entitlements/check (view warm)`, r.check, r.bare, true),
      row(`${t} | GET /health/live at a fixed ${fmt(FIXED_RATE)} requests/s (4 connections)`, r.bareAtRate!, null),
      row(`${t} | POST …/entitlements/check at a fixed ${fmt(FIXED_RATE)} requests/s (4 connections)`, r.checkAtRate!, null, true),
      row(`${t} | POST …/entitlements/check at a fixed ${fmt(FIXED_RATE)} requests/s while POST /v1/events ingests ${fmt(r.ingestRate ?? 0)} usage events/s (same process)`, r.checkUnderIngest!, null),
      row(`${t} | POST …/entitlements/check at a fixed ${fmt(FIXED_RATE)} requests/s to a second process, ROLES=api, while POST /v1/events ingests ${fmt(r.apiProcessIngestRate ?? 0)} usage events/s into the first (CPU: the second process's)`, r.checkApiProcess!, null),
      row(`${t} | POST …/entitlements/check, cold pass (${fmt(S)} misses)`, r.cold, r.bare),
      row(`${t} | GET /v1/spaces/:id/usage (read model)`, r.usage, r.bare),
    );
  }
  lines.push(
    '',
    ...runs
      .filter((r) => r.rounds)
      .map((r) => `${STORE_TITLE[r.store]}, every (bare, check) round: ${r.rounds!.map((x) => `${fmt(x.bare.rps)} / ${fmt(x.check.rps)} requests/s, p99 ${x.bare.p99} / ${x.check.p99} ms, ratio ${ratio(x.check.rps, x.bare.rps)}`).join('; ')}.`),
  );
  lines.push(
    '',
    `The check's own work in process (\`checkPathInProcess\`: ${fmt(S)} view entries, lookups in random order, no sockets, medians of 7 rounds): the entry, its running period and the domain's \`checkEntitlement\` ${fmt(inProcess.checkNs)} ns per check, against ${fmt(inProcess.lookupNs)} ns for the Map lookup alone in the same loop (${ratio(inProcess.checkNs, inProcess.lookupNs)}).`,
  );
  lines.push('', `Service RSS after the runs: ${runs.map((r) => `${STORE_TITLE[r.store]} ${fmt(r.rssMiB)} MiB`).join(', ')}.`);
  lines.push('', LIMITS);
  const targets = smoke
    ? []
    : runs.flatMap((r) =>
        r.check && r.bare
          ? [
              { what: `${STORE_TITLE[r.store]}: entitlement check >= 0.6x the bare endpoint`, ok: r.check.rps >= 0.6 * r.bare.rps, detail: `${ratio(r.check.rps, r.bare.rps)} (${fmt(r.check.rps)} vs ${fmt(r.bare.rps)} requests/s)` },
              {
                what: `${STORE_TITLE[r.store]}: entitlement check p99 <= 2 ms (at ${fmt(FIXED_RATE)} requests/s; at full speed with ${connections} connections in the second column)`,
                ok: (r.checkAtRate?.p99 ?? Infinity) <= 2,
                detail: `${r.checkAtRate?.p99} ms (bare ${r.bareAtRate?.p99} ms); full speed: ${r.check.p99} ms (bare ${r.bare.p99} ms)`,
              },
            ]
          : [{ what: `${STORE_TITLE[r.store]}: entitlement check`, ok: false, detail: `skipped: ${r.skipped}` }],
      );
  return {
    inProcess,
    key: 'api',
    title: `Entitlement check and usage query under load (${fmt(S)} Spaces, SQLite and PostgreSQL)`,
    command: smoke ? 'node -r @swc-node/register bench/api.bench.ts --smoke' : 'npm run bench:api',
    runs,
    lines,
    targets,
  };
}

const LIMITS = [
  '**Session 26** (08:23 to 08:31, load average 0.7 at the start; this session changed the SQLite read model\'s Space query, which the view\'s cold pass and the usage query read: a Space\'s revision is now the higher of its `rm_space_revisions` row and its usage rows\'): ratios 0.72x on both stores; at 2,000 requests/s the check\'s p99 was 1 ms on both (bare 1 ms), at full speed 2 ms (bare 2 ms). The cold pass and the usage query, as ratios to the same run\'s bare endpoint, stood at 0.32x and 0.40x on SQLite, against 0.31x and 0.42x in session 24.',
  '**Session 24** (03:31 to 03:39, load average 3.9 at the end; the service now keeps a bounded tail of uses per Space state, nothing dropped in this workload): ratios 0.71x (SQLite) and 0.70x (PostgreSQL); at 2,000 requests/s the check\'s p99 was 1 ms on both (bare 1 and 2 ms), so the PostgreSQL p99 target is met in this run (3 ms in session 22\'s). The api-only process during the flood: SQLite 2,001 checks a second, p99 21 ms; PostgreSQL 1,378, p99 28 ms.',
  '**Session 22.** New in this run: the fixed-rate check on a second process of the service with ROLES=api on the same store (SQLite: the same DATA_DIR) while the same flood goes to the first. SQLite: 1,964 of the 2,000 checks a second answered, p50 1 ms, p99 23 ms, against 22 a second, p50 100 ms and p99 559 ms in the all-roles process. PostgreSQL: 1,249 a second, p50 2 ms, p99 44 ms, against 1,325 a second, 6 ms and 208 ms; there the database server, the flooded process, the api process and this bench share the two cores. What held the all-roles SQLite process\'s event loop during a flood, timed with temporary wrappers in the service (20,000 Spaces, 3 s of flood at 4,343 events/s): the store\'s group commits 15 to 76 ms each, the balance read model\'s page commits 10 to 27 ms, the breakdown\'s 12 to 18 ms, a batch\'s cold loads 10 to 32 ms; the loop\'s longest delay over the whole run, start-up included, was 337 ms. The read-your-writes wait is not what the checks pay: answered without it (2 alternating pairs, 20,000 Spaces, 2 s phases), p50 65 and 59 ms and p99 228 and 222 ms, against 60 and 61 ms and 243 and 201 ms with it. Writes sent to the api-only process on SQLite wait for the other process\'s write lock (one writer per file): in an experiment (20,000 Spaces), single events POSTed to it every 20 ms during the flood took p50 143 and 158 ms and p99 363 and 435 ms, and its checks\' p99 rose from 17 to 23 ms to 40 to 55 ms: SQLite\'s own wait for the lock (busy_timeout) sleeps in the event loop\'s thread. So an append now tries the lock without waiting and tries again a few ms later (the event store\'s `flush`): in two more runs of the same experiment, writes p50 155 and 148 ms, p99 367 and 274 ms, and the checks\' p99 30 and 19 ms while it wrote (19 and 14 ms while it did not). So the checks and reads go to the api-only process, the writes to the one with every role (README, Production). The PostgreSQL check\'s p99 at 2,000 requests/s was 3 ms in this run (bare 2 ms): that target is not met on PostgreSQL in this run; it was 1 ms in sessions 18 and 19.',
  '**Session 19.** Tried and not kept: the projector in a worker thread of its own (see bench:flat), for the checks during ingest. Two alternating pairs of the last phase alone (SQLite, 20,000 Spaces, 5 s phases): with the thread, 64 and 65 checks answered per second, p50 40 and 36 ms, p99 278 and 466 ms, at 8,564 and 8,149 usage events/s; without it, 36 and 44 per second, p50 57 and 49 ms, p99 274 and 228 ms, at 6,816 and 8,009 events/s. The group commits and the ingest requests themselves still hold the event loop, so the p99 did not fall.',
  "**Session 18** (`npm run bench:api`, 13:21 to 13:30, load average 1.1 to 1.6; the service code is session 17's). Both targets were met in this run. Ratios: SQLite 0.71x, PostgreSQL 0.73x (median rounds; single rounds 0.62x to 0.78x). At 2,000 requests/s the check's p99 was 2 ms on SQLite (bare 2 ms) and 1 ms on PostgreSQL (bare 1 ms). Session 17 had 6 ms on SQLite while its bare endpoint had 13 ms: the machine, not the check. **New in this run:** the fixed-rate check runs again while the bench POSTs usage events to the same process, to show what a burst of ingest does to the checks of an all-roles process. SQLite: 12 checks answered per second of the 2,000 asked, p50 167 ms, p99 630 ms, at 2,434 usage events/s. PostgreSQL: 628 per second, p50 13 ms, p99 310 ms, at 2,718 events/s. Every role of that process shares one event loop, and the group commit of the pending appends and the projection's pages (thousands of events, synchronous on SQLite) hold it for tens to hundreds of ms. The check load's 4 connections wait behind them. **Tried and not kept:** read-your-writes per Space, where a check waits only for this process's own appends to its own Space rather than for every append. Alternating pairs with the build without it (20,000 Spaces, 3 s phases, both stores): PostgreSQL p50 13 and 12 ms, p99 143 and 306 ms with it, against 16 and 10 ms and 101 and 125 ms without; SQLite p50 110 and 100 ms with it, against 102 and 90 ms without. No gain: the checks wait for the event loop, not for the view. **What would help:** the api role in processes of its own (`ROLES`, with PostgreSQL), or smaller synchronous slices (group commits and projection pages capped in events). The slices would cost ingest throughput: in `bench:flat`, projection pages of about 1,300 events cost 42 µs per event against 27 µs at about 6,000.",
  '**Session 17** (a slower machine: the bare endpoint at 8,900 to 12,900 requests/s against 17,000 to 25,000 in session 14): SQLite 0.69x and PostgreSQL 0.66x (median rounds; single rounds 0.56x to 0.84x and 0.60x to 0.73x). The view now reads the store\'s feed as JSON text and parses only the events of Spaces it holds (`spaceIdOfStoredJson`); no events are ingested during these loads, so this benchmark does not see it (in `bench:ingest`, where every role runs, its poll went from 5.1 to 3.0 µs per event). At 2,000 requests/s SQLite\'s bare endpoint had a p99 of 13 ms and the check 6 ms, PostgreSQL\'s 3 and 2 ms: the bare endpoint\'s own p99 says the machine and the client in this process set that figure, not the check. **What limits it now.** A warm check reads neither store: it is a lookup in the entitlement view (a Map of at most `ENTITLEMENT_VIEW_MAX_SPACES` Spaces, kept fresh by one read of the store\'s feed every `ENTITLEMENT_VIEW_POLL_MS`), the domain\'s `checkEntitlement` over the held rows, and the answer; so SQLite and PostgreSQL give the same figures within the noise. The route is served by Fastify without Nest\'s router (`http/check-route.ts`): Nest declares it (path, scope, OpenAPI entry) and an `onRoute` hook swaps the handler Nest registers (per request: an execution context, the guards consumer, the parameter factories, the interceptor chain, the response controller, a promise) for a direct one that runs the same `ApiKeyGuard` and the same controller method, with errors through Nest\'s exception layer (same shapes); a view hit is answered synchronously and the answer is serialised by a response schema (fast-json-stringify). The bare endpoint still goes through Nest. What the check still pays that the bare endpoint does not: reading a POST body (the request stream\'s data and end events, the depth scan, `JSON.parse`), the view lookup and the domain\'s check (the running period is found twice: by the view, to see whether a period ended, and by `checkEntitlement`), and an answer of about 330 bytes instead of 15. A CPU profile of the service over sockets (3,000 Spaces, 8 s of each endpoint alone, load average about 10) puts the socket write (`writeUtf8String`, i.e. the write(2) call) at 37 % of the samples for the check and 45 % for the bare endpoint, and the process idle about a third of the time, waiting for its share of the two cores, which autocannon and the other processes on the machine use: the kernel\'s socket work and the client bound both endpoints more than the JavaScript of either. The check\'s handler (guard, validation, view, domain, answer) is about 6 % of the samples, reading its body about 3 %. p99 here follows the load average of the shared machine (other benchmarks run next to this one), not the service: compare it with the bare endpoint\'s p99 in the same run.',
  'The client: autocannon runs in this process, on the same two cores as the service. It used to build a new request per check (a `setupRequest` call drawing a random Space, and the request rebuilt), while the bare request is built once; the check and usage requests are now a fixed set over random Spaces, built before the load, each connection cycling through its own share (16,384 distinct Spaces at full scale; every one is in the view), so the client does the same work per request for both endpoints.',
  'Measured for this round, A/B on the shared machine (three other benchmark runs beside it): the previous build and this one up at once on copies of one seeded SQLite store (5,000 Spaces, the view warm), alternating rounds of 2 s of the bare endpoint then 2 s of the check against each, 16 connections, medians; two runs. Service CPU per check: 113.9 and 95.1 µs before, 92.7 and 76.2 µs after (the bare endpoint 81.5 and 55.0 µs before, 79.1 and 58.6 µs after, in the same rounds); CPU per request, bare / check: 0.72x and 0.58x before, 0.85x and 0.77x after; requests/s, check / bare: 0.73x and 0.68x before, 0.93x and 0.74x after, with single rounds from 0.17x to 1.63x (load average 9 to 11 in the first run (14 rounds), 10 to 13 in the second (16 rounds): the throughput of either endpoint follows the neighbours more than the service). The old client (a `setupRequest` per check) on the old build in the same runs: CPU ratio 0.61x and 0.65x, requests/s ratio 0.82x and 0.66x. A full `npm run bench:api` of this build at load average 17 to 21 gave 0.54x (SQLite) and 0.40x (PostgreSQL) in requests/s, with service CPU per request 51 µs bare / 74 µs check (SQLite) and 49 / 80 µs (PostgreSQL): 0.69x and 0.61x in CPU, where the last quiet run before this round had 0.56x and 0.50x; at that load the fixed-rate p99 was 52 ms bare and 254 ms check (SQLite), so the p99 target could not be judged there. In process (Fastify `inject`, 2,000 Spaces, 30 alternating blocks of 2,000 requests, load average 8 to 9) the check cost 0.35x to 0.38x the bare endpoint\'s CPU before and 0.41x after: `inject`\'s own request and response objects dominate there.',
  'The cold pass (each Space\'s first check after a start: the Space row and its usage rows in one read-model snapshot, then the Space\'s stream after that row) costs what the old path cost and more; it is paid once per Space while it stays in the view. The view holds about 1.2 KB per Space (heap difference over 20,000 Spaces loaded): about 120 MB at 100,000, inside the 576 MB heap of `npm start`, and every major GC of the process marks it. The usage query is unchanged (the read model: the Space row with its timeline JSON and the period row per request); its figures move with the machine\'s load.',
  'Session 10, on a quiet machine (load average about 1.5 just after a boot; earlier rounds ran at 2 to 20): the bare endpoint answered 38,000 to 48,000 requests/s instead of 13,000 to 20,000, and the check 0.54x to 0.65x of it (SQLite) and 0.59x to 0.76x (PostgreSQL) over six rounds, where the loaded runs gave 0.64x to 0.90x: the faster the machine, the more the check\'s fixed extra counts. A CPU profile of the service (20,000 Spaces, 8 s of each endpoint, 250 µs sampling) puts that extra at: the socket write 13.6 µs per check against 9.4 µs per bare answer (one write(2) each, same syscalls per request under `strace -c`; the kernel\'s loopback path, not the bytes), the handler 4.5 µs (the view\'s Map lookup and the entry 1.6 µs, the domain\'s check 1.6 µs), reading and parsing the POST body about 2 µs. A plain Node HTTP server on the same machine (no Fastify, no Nest; 5 s per case after a warm-up, autocannon with 16 connections) costs 15.4-16.3 µs of CPU per GET and 20.3-21.8 µs per POST with the same small JSON body, and about 1 µs more for the check\'s 243-byte answer than for a 15-byte one: being a POST (the request stream\'s data and end events) is about 5 µs of the check\'s extra before any of its own work. Done in this session: a catalog version\'s `effectiveFrom` parsed once (`effectiveFromMs`; `catalogVersionAt` and `allowanceDuring` ran `Date.parse` on every check) and the entry keeps its timeline\'s period finder: the in-process figure below went from 2.7-3.4 µs to 1.8-2.0 µs per check (three alternating runs of the same loop on the previous and this build, 100,000 entries).',
  'Already done: the view (issue 14 part 4), eviction by a use counter in one sweep (no re-insertion per hit), the request parsed without per-request closures, only the message of the answer\'s reason built, the route without Nest\'s router, a synchronous answer on a hit, the response schema, the client\'s requests pre-built. Next levers: fewer objects per check (the answer is built twice: the domain\'s, then the route\'s), and more api processes (each holds its own view; the check scales with cores, the write(2) per answer does not shrink).',
].join('\n\n');

if (require.main === module) runAsScript(runApiBench);
