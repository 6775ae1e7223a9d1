/**
 * Projection rebuild, next to a raw sequential read of the same events.
 *
 * A SQLite store is seeded through the service's own decide-and-append path; then, on the same
 * file in the same run:
 *  - raw read: one SELECT over the Space events in position order, each row's JSON parsed (the
 *    least any projection must do to see the events);
 *  - rebuild: `rebuildBalances` (what `metering rebuild balances` runs): clear the read model,
 *    then read pages and apply them, checkpoint included, one transaction per page.
 *
 *   node -r @swc-node/register bench/rebuild.bench.ts [--smoke]
 *   env: BENCH_REBUILD_EVENTS, BENCH_REBUILD_SPACES, BENCH_REBUILD_BATCH
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SqliteEventStore } from '@metering/event-store';
import { SqliteBalanceReadModel } from '../apps/metering/src/projection/sqlite-balance-read-model';
import { rebuildBalances } from '../apps/metering/src/projection/rebuild';
import { type BenchReport, type Scale, fmt, log, ratio, runAsScript, tempDir } from './common';
import { seedStore } from './seed';

export async function runRebuildBench(scale: Scale): Promise<BenchReport & { rate: number }> {
  const smoke = scale === 'smoke';
  const N = Number(process.env.BENCH_REBUILD_EVENTS ?? (smoke ? 3_000 : 300_000));
  const S = Number(process.env.BENCH_REBUILD_SPACES ?? (smoke ? 100 : 10_000));
  const batch = Number(process.env.BENCH_REBUILD_BATCH ?? 5000);
  // BENCH_REBUILD_FILE: keep the seeded file there and reuse it on later runs (for profiling).
  const reuse = process.env.BENCH_REBUILD_FILE;
  const file = reuse ?? path.join(tempDir('rebuild'), 'metering.db');
  const seedIt = !reuse || !fs.existsSync(reuse);
  const store = new SqliteEventStore(file, { synchronous: 'FULL' });
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  try {
    if (seedIt) {
      log(`seeding ${fmt(N)} inbound events over ${fmt(S)} Spaces`);
      const t0 = performance.now();
      const seeded = await seedStore(store, N, S);
      log(`seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s (${fmt(seeded.accepted)} accepted, ${seeded.rejected} rejected)`);
    }

    // Raw: the same rows, read in order, JSON parsed.
    const rawStmt = store.db.prepare(
      "SELECT global_position, stream_name, revision, event_id, type, data, metadata, recorded_at FROM events WHERE substr(stream_name, 1, 6) = 'space-' ORDER BY global_position",
    );
    const runRaw = () => {
      const t = performance.now();
      let n = 0;
      let check = 0;
      for (const row of rawStmt.iterate() as Iterable<{ data: string; metadata: string }>) {
        const d = JSON.parse(row.data);
        JSON.parse(row.metadata);
        check += d ? 1 : 0;
        n++;
      }
      return { n, secs: (performance.now() - t) / 1000, check };
    };
    runRaw(); // warm the page cache, as the rebuild will find it
    const raw = runRaw();
    const rawRate = raw.n / raw.secs;
    log(`raw sequential read: ${fmt(raw.n)} events at ${fmt(rawRate)} events/s`);

    const t1 = performance.now();
    const applied = await rebuildBalances(store, readModel, { batch });
    const secs = (performance.now() - t1) / 1000;
    const rate = applied / secs;
    log(`rebuild: ${fmt(applied)} events at ${fmt(rate)} events/s`);
    if (applied !== raw.n) throw new Error(`rebuild applied ${applied} events, the raw read saw ${raw.n}`);
    const spaces = (store.db.prepare('SELECT count(*) AS n FROM rm_spaces').get() as { n: number }).n;
    if (spaces !== S) throw new Error(`rebuild produced ${spaces} Spaces, expected ${S}`);

    return {
      key: 'rebuild',
      title: 'Projection rebuild (SQLite)',
      command: smoke ? 'node -r @swc-node/register bench/rebuild.bench.ts --smoke' : 'npm run bench:rebuild',
      rate,
      lines: [
        `${fmt(N)} inbound events over ${fmt(S)} Spaces decided and stored by the service's ingest path (${fmt(raw.n)} Space events with thresholds); one file, warm page cache; pages of ${fmt(batch)}.`,
        '',
        '| measure | value |',
        '|---|---|',
        `| raw sequential read of the same events (SELECT in position order, JSON parsed) | ${fmt(rawRate)} events/s |`,
        `| rebuild: clear, read pages, apply (rows + checkpoint per page) | **${fmt(rate)} events/s** (${secs.toFixed(2)} s) |`,
        `| ratio rebuild / raw read | **${ratio(rate, rawRate)}** |`,
        '',
        '**What limits it now.** No row per usage event any more: a late subscription change records the usage it moves (`SubscriptionChanged.moves`), so the rebuild writes only Space, period and threshold rows (0.19x with one row per use before). What is left is per-event work in JavaScript on one core: every event is JSON-parsed, folded through the same code as the live projection (`periodAt` for each use, the Space\'s timeline kept per row) and its rows looked up in the batch buffer. Already done: one row buffer for the whole rebuild (each row written once per flush), statements prepared once, `nextResetAt` derived once per Space per flush, read-model commits without fsync, per-Space indexes in the buffer. Next levers: decode only the fields the projection reads, and apply pages in a worker thread while the next page is read.',
      ],
      targets: smoke ? [] : [{ what: 'rebuild >= 200,000 events/s', ok: rate >= 200_000, detail: `${fmt(rate)} events/s` }],
    };
  } finally {
    await readModel.close().catch(() => undefined);
    await store.close();
  }
}

if (require.main === module) runAsScript(runRebuildBench);
