/**
 * The fault run (issue 7): the built service consuming from a real Kafka broker while it is killed
 * with SIGKILL, the broker is restarted, the store is made unavailable, every valid event is
 * delivered 1-3 times and poison messages are mixed in. At the end every Space's balances are
 * compared with an independent reference model (test/support/reference-model.ts), every poison
 * record with the dead-letter topic, every threshold and reset with the outbound topics, and the
 * ops audit must find no difference. Used by scripts/torture/run.ts (full size) and
 * test/torture/torture.test.ts (short form).
 *
 * This file is the run's outline; its parts live beside it: `setup.ts` (broker, store, processes,
 * tear-down), `phases.ts` (the service started, the faults, the four producing phases),
 * `checks.ts` (the outbound wait and the checks), `processes.ts` (supervisor, auditor, producer,
 * CLI), `probes.ts` (direct store reads) and `figures.ts` (options, figures, report).
 */
import { awaitOutbound, checkAudit, checkCounts, checkDeadLetters, checkResets, checkThresholds, checkUsageScreens } from './checks';
import { type TortureOptions, type TortureResult } from './figures';
import { producePhases, startFaults, startService } from './phases';
import { setUpRun, tearDownRun } from './setup';

export { type TortureFigures, type TortureOptions, type TortureResult, coveredBoundaries, formatFigures } from './figures';
export { type StoreProbe, pgProbe } from './probes';
export { Supervisor, mapLimit, produceAll } from './processes';

export async function runTorture(o: TortureOptions): Promise<TortureResult> {
  const started = Date.now();
  const run = await setUpRun(o);
  const { fig, misses, miss, sups, w } = run;
  try {
    const collected = await startService(run);
    const faults = startFaults(run);
    const produced = await producePhases(run, faults);
    const settled = await awaitOutbound(run, collected);
    fig.kills = sups.reduce((a, x) => a + x.kills, 0);
    fig.unexpectedExits = sups.reduce((a, x) => a + x.unexpectedExits, 0);

    await checkCounts(run, settled);
    await checkUsageScreens(run, settled);
    await checkDeadLetters(run, produced, collected);
    checkResets(run, collected, settled);
    const thrBy = checkThresholds(run, collected, settled);
    await checkAudit(run, thrBy);

    Object.assign(fig, {
      uniqueEvents: w.stats.unique,
      subscriptions: w.stats.subscriptions,
      upgrades: w.stats.upgrades,
      usageEvents: w.stats.usage,
      lateEvents: w.stats.late,
      deliveries: w.stats.deliveries,
    });
    if (fig.kills < o.kills) miss(`only ${fig.kills} of ${o.kills} kills happened`);
    if (fig.brokerRestarts < 1) miss('the broker was not restarted');
    if (fig.storeOutages < 1) miss('the store was never made unavailable');
  } catch (err) {
    miss(`run failed: ${(err as Error).stack}`);
  } finally {
    await tearDownRun(run);
  }
  fig.durationS = Math.round((Date.now() - started) / 1000);
  if (misses.length === 0 && (fig.lost !== 0 || fig.doubled !== 0)) misses.push('lost or doubled is not zero');
  return { figures: fig, misses };
}
