/**
 * Peak RSS with 1,000,000 events over 100,000 Spaces: the Kafka ingest benchmark at that size,
 * reporting the service's peak resident set (VmHWM) next to its RSS just after start-up.
 *
 *   node -r @swc-node/register bench/rss.bench.ts [--smoke]
 *   env: BENCH_RSS_EVENTS (1000000), BENCH_RSS_SPACES (100000), KAFKA_BROKERS
 */
import { type BenchReport, type Scale, fmt, runAsScript } from './common';
import { runIngestBench } from './ingest.bench';

export async function runRssBench(scale: Scale): Promise<BenchReport & { peakRss: number }> {
  const smoke = scale === 'smoke';
  const events = Number(process.env.BENCH_RSS_EVENTS ?? (smoke ? 2_000 : 1_000_000));
  const spaces = Number(process.env.BENCH_RSS_SPACES ?? (smoke ? 500 : 100_000));
  const r = await runIngestBench({ scale, events, spaces, brokers: process.env.KAFKA_BROKERS || undefined });
  const mib = (b: number) => `${fmt(b / 2 ** 20)} MiB`;
  return {
    key: 'rss',
    title: `Peak RSS with ${fmt(events)} events over ${fmt(spaces)} Spaces (SQLite, Kafka ingest)`,
    command: smoke ? 'node -r @swc-node/register bench/rss.bench.ts --smoke' : 'npm run bench:rss',
    peakRss: r.peakRss,
    lines: [
      `The ingest benchmark at this size (backlog produced first; then consumed, decided, appended and projected); RSS read from /proc/<pid>/status of the service process.`,
      '',
      '| measure | value |',
      '|---|---|',
      `| service RSS just after start-up (baseline) | ${mib(r.idleRss)} |`,
      `| service peak RSS (VmHWM) over the whole run | **${mib(r.peakRss)}** (${(r.peakRss / Math.max(1, r.idleRss)).toFixed(1)}x the baseline) |`,
      `| end-to-end ingest at this size | ${fmt(r.rate)} events/s (raw consume ${fmt(r.raw)} msg/s) |`,
    ],
    targets: smoke ? [] : [{ what: 'peak RSS < 1 GB', ok: r.peakRss < 1e9, detail: mib(r.peakRss) }],
  };
}

if (require.main === module) runAsScript(runRssBench);
