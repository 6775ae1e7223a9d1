/**
 * Entitlement check and usage query under load, next to a bare endpoint of the same server.
 *
 * A SQLite data dir is seeded with S Spaces (a subscription each, and usage) through the service's
 * own ingest path; the built service (dist) starts on it and projects it; then autocannon (in this
 * process, on the other core) drives, one after the other and for the same duration:
 *  - GET /health/live: the bare endpoint (no store, no domain), the server's own ceiling here;
 *  - POST /v1/spaces/:id/entitlements/check with a random Space of the S each request;
 *  - GET /v1/spaces/:id/usage with a random Space.
 *
 *   node -r @swc-node/register bench/api.bench.ts [--smoke]
 *   env: BENCH_API_SPACES (100000), BENCH_API_SECONDS (10), BENCH_API_CONNECTIONS (16)
 */
import * as path from 'node:path';
import { SqliteEventStore } from '@metering/event-store';
import {
  type BenchReport,
  type Scale,
  cpuSecondsOf,
  fmt,
  log,
  prng,
  ratio,
  rssOf,
  runAsScript,
  spaceIdOf,
  startService,
  tempDir,
} from './common';
import { seedStore } from './seed';

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

async function load(url: string, seconds: number, connections: number, request: Record<string, unknown>, pid: number): Promise<Load> {
  const cpu0 = cpuSecondsOf(pid);
  const result = await autocannon({ url, connections, duration: seconds, requests: [request] });
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

export async function runApiBench(scale: Scale): Promise<BenchReport & { check: Load; bare: Load }> {
  const smoke = scale === 'smoke';
  const S = Number(process.env.BENCH_API_SPACES ?? (smoke ? 500 : 100_000));
  const seconds = Number(process.env.BENCH_API_SECONDS ?? (smoke ? 2 : 10));
  const connections = Number(process.env.BENCH_API_CONNECTIONS ?? 16);
  const dataDir = tempDir('api');
  {
    const store = new SqliteEventStore(path.join(dataDir, 'metering.db'), { synchronous: 'NORMAL' });
    log(`seeding ${fmt(S)} Spaces (a subscription and 2 usage events each)`);
    const t0 = performance.now();
    await seedStore(store, 3 * S, S);
    log(`seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await store.close();
  }
  const t1 = performance.now();
  const svc = await startService({ EVENT_STORE: 'sqlite', LOG_LEVEL: 'warn' }, dataDir);
  log(`service up and projected in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  try {
    const pid = svc.proc.pid as number;
    const rnd = prng(42);
    const randomSpace = () => spaceIdOf(Math.floor(rnd() * S));
    const checkBody = JSON.stringify({ feature: 'ai_backgrounds', generations: 1 });
    // Warm-up, then the three loads for the same duration each.
    await load(svc.base, 1, connections, { method: 'GET', path: '/health/live' }, pid);
    const bare = await load(svc.base, seconds, connections, { method: 'GET', path: '/health/live' }, pid);
    log(`bare: ${fmt(bare.rps)} req/s`);
    const check = await load(svc.base, seconds, connections, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: checkBody,
      setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/v1/spaces/${randomSpace()}/entitlements/check` }),
    }, pid);
    log(`entitlement check: ${fmt(check.rps)} req/s`);
    const usage = await load(svc.base, seconds, connections, {
      method: 'GET',
      setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/v1/spaces/${randomSpace()}/usage` }),
    }, pid);
    log(`usage: ${fmt(usage.rps)} req/s`);
    // One answer checked for content, so a fast error page cannot pass for a fast answer.
    const sample = await fetch(`${svc.base}/v1/spaces/${spaceIdOf(1)}/entitlements/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: checkBody });
    const body = (await sample.json()) as { allowed?: unknown; limit?: unknown };
    if (typeof body.allowed !== 'boolean' || typeof body.limit !== 'number') throw new Error(`unexpected entitlement answer: ${JSON.stringify(body)}`);
    for (const [what, l] of [['bare', bare], ['check', check], ['usage', usage]] as const)
      if (l.errors || l.non2xx) throw new Error(`${what}: ${l.errors} errors, ${l.non2xx} non-2xx answers`);
    const rss = rssOf(svc.proc.pid as number);
    const row = (what: string, l: Load, bold = false) =>
      `| ${what} | ${bold ? '**' : ''}${fmt(l.rps)}${bold ? '**' : ''} | ${l.p50} ms | ${bold ? '**' : ''}${l.p99} ms${bold ? '**' : ''} | ${ratio(l.rps, bare.rps)} | ${fmt(l.cpuUs)} µs (${fmt(1e6 / l.cpuUs)}/CPU-s) |`;
    return {
      key: 'api',
      title: `Entitlement check and usage query under load (${fmt(S)} Spaces, SQLite)`,
      command: smoke ? 'node -r @swc-node/register bench/api.bench.ts --smoke' : 'npm run bench:api',
      check,
      bare,
      lines: [
        `${fmt(S)} Spaces seeded through the ingest path (${fmt(3 * S)} inbound events); the built service on that SQLite file; autocannon in the bench process, ${connections} connections, ${seconds} s per endpoint, a random Space per request. Service RSS after the runs: ${fmt(rss.current / 2 ** 20)} MiB.`,
        '',
        '| endpoint | requests/s | p50 | p99 | ratio to bare | service CPU per request |',
        '|---|---|---|---|---|---|',
        row('GET /health/live (bare endpoint, same server)', bare),
        row('POST /v1/spaces/:id/entitlements/check', check, true),
        row('GET /v1/spaces/:id/usage', usage),
        '',
        '**What limits it now.** CPU per request (last column): the check costs several times the bare endpoint (Nest routing and guard, JSON body parsing, two SQLite lookups: the Space row with its timeline JSON and its period row, the domain check, serialising), and autocannon runs on the same two cores. Already done: Fastify instead of Express (the bare endpoint went from about 11.5k to 25-30k requests/s here; the check from about 4.4k to 7k), statements prepared once. Next levers: an in-memory cache of Space rows kept fresh by the projector, and the api role on more processes (it is stateless).',
      ],
      targets: smoke
        ? []
        : [
            { what: 'entitlement check >= 10,000 requests/s', ok: check.rps >= 10_000, detail: `${fmt(check.rps)} requests/s` },
            { what: 'entitlement check p99 < 5 ms', ok: check.p99 < 5, detail: `${check.p99} ms` },
          ],
    };
  } finally {
    await svc.stop();
  }
}

if (require.main === module) runAsScript(runApiBench);
