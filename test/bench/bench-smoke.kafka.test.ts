/**
 * The short form of every benchmark (issue 6): each runs end to end at a small size so none of
 * them rots. No timing is asserted here (timings belong to bench/RESULTS.md); what is asserted is
 * that each one measured something and stood it next to its baseline.
 */
import { USES_KEPT_MAX } from '@metering/domain';
import { runHistoryBench } from '../../bench/history.bench';
import { runIngestBench } from '../../bench/ingest.bench';
import { runPgVsSqliteBench } from '../../bench/pg-vs-sqlite.bench';
import { runRebuildBench } from '../../bench/rebuild.bench';
import { runRssBench } from '../../bench/rss.bench';
import { runStoreBench } from '../../bench/store.bench';
import { kafkaBrokers } from '../support/kafka-app';

jest.setTimeout(240_000);

const table = (lines: string[]) => lines.filter((l) => l.startsWith('|')).join('\n');

test('store: every adapter that can run here measured against raw inserts; KurrentDB says it was skipped', async () => {
  const r = await runStoreBench('smoke');
  const t = table(r.lines);
  expect(t).toMatch(/\| SQLite \(synchronous=FULL\) \| [\d,]+ \| [\d,]+ \| \*\*\d+\.\d\dx\*\* \|/);
  expect(t).toMatch(/\| PostgreSQL \(same server, same database\) \| [\d,]+ \| [\d,]+ \| \*\*\d+\.\d\dx\*\* \|/);
  if (!process.env.KURRENTDB_URL) expect(t).toContain('skipped: no KurrentDB');
});

test('pg-vs-sqlite: the same ingest workload through IngestService on SQLite and PostgreSQL, every event accepted on both, ratio printed', async () => {
  const r = await runPgVsSqliteBench('smoke');
  expect(r.sqlite).toBeGreaterThan(0);
  expect(r.postgres).toBeGreaterThan(0);
  expect(table(r.lines)).toMatch(/\| PostgreSQL \(local server: .*\) \| [\d,]+ \| [\d.,]+ \| [\d, /]+ \| \*\*\d+\.\d\dx\*\* \|/);
});

test('rebuild: applies exactly the events the raw read sees (the bench checks it) and reports both rates', async () => {
  const r = await runRebuildBench('smoke');
  expect(r.rate).toBeGreaterThan(0);
  expect(table(r.lines)).toMatch(/raw sequential read .* \| [\d,]+ events\/s \|/);
});

// api: its short form (both stores) is test/bench/api-view.test.ts.

test('ingest and rss: the service drains a Kafka backlog next to a raw consume and a raw durable pipeline of the same messages', async () => {
  const ingest = await runIngestBench({ scale: 'smoke', brokers: kafkaBrokers() });
  expect(ingest.rate).toBeGreaterThan(0);
  expect(ingest.raw).toBeGreaterThan(0);
  expect(ingest.rawDurable).toBeGreaterThan(0);
  const t = table(ingest.lines);
  expect(t).toMatch(/\| ratio service \/ raw durable pipeline \| \*\*\d+\.\d\dx\*\* \|/);
  expect(t).toMatch(/\| ratio service \/ raw consume \| \d+\.\d\dx \|/);
  const rss = await runRssBench('smoke');
  expect(rss.peakRss).toBeGreaterThan(0);
});

test('history: a Space with a long history next to a fresh one; after a restart its cold load reads a snapshot and a bounded tail', async () => {
  const r = await runHistoryBench('smoke');
  const t = table(r.lines);
  expect(t).toMatch(/single-event POST p50 \| [\d.,]+ ms \| [\d.,]+ ms \| \*\*\d+\.\d\dx\*\* \|/);
  expect(t).toContain('snapshot used');
  // the tail after the snapshot is bounded (snapshots every max(1000, window) events), not the 20,000 of the history
  expect(r.coldSnapshotEvents).toBeLessThanOrEqual(1001);
  // 20,000 uses inside the window (30 days), of which the state keeps a bounded tail
  expect(r.usesKept).toBeGreaterThan(0);
  expect(r.usesKept).toBeLessThanOrEqual(USES_KEPT_MAX + 1);
  // a change effective now needs none of the uses dropped from the tail; one back-dated over them reads them back
  expect(r.nowChangeRead).toEqual({ reads: 0, events: 0 });
  expect(r.backChangeRead.reads).toBe(1);
  expect(r.backChangeRead.events).toBeGreaterThan(1000);
  expect(t).toContain('a subscription change to weekly back-dated 15 days');
});
