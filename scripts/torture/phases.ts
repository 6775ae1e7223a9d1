/**
 * The running phases of one fault run (see torture.ts): the service and the collectors started,
 * the faults injected while the workload is produced in four phases, each awaited until the store
 * holds every inbound event so far.
 */
import { TopicCollector } from '../../test/support/kafka-app';
import { lockSqlite } from '../../test/support/fault-store';
import { InboundAuditor, produceAll, sleep } from './processes';
import { type TortureRun } from './setup';
import { type OutMsg, iso } from '../../test/support/workload';

const INBOUND_TYPES = ['SubscriptionChanged', 'GenerationRecorded', 'BatchExportRecorded'];

/** The collectors of the outbound topics and the inbound auditor. */
export interface Collected {
  thresholds: TopicCollector;
  resets: TopicCollector;
  dlq: TopicCollector;
  inbound: InboundAuditor;
}

/** Starts the service processes (the first creates the topics), then the collectors. */
export async function startService(run: TortureRun): Promise<Collected> {
  const { o, sup, sups, log, dataDir, schema, messaging, topics, collectors } = run;
  await sup.start(); // creates the topics
  for (const other of sups.slice(1)) await other.start();
  log(`service up (${o.store}, data ${dataDir}${o.store === 'postgres' ? `, schema ${schema}` : ''})`);
  const thresholds = await new TopicCollector(messaging, topics.thresholdCrossed).start();
  const resets = await new TopicCollector(messaging, topics.periodReset).start();
  const dlq = await new TopicCollector(messaging, topics.deadLetter).start();
  collectors.push(thresholds, resets, dlq);
  const inbound = await new InboundAuditor(messaging, [topics.generationPerformed, topics.batchExported, topics.subscriptionChanged]).start();
  run.inbound = inbound;
  return { thresholds, resets, dlq, inbound };
}

/** Waits until the store holds every unique inbound event produced so far (or gives up). */
export async function converge(run: TortureRun, what: string, timeoutMs: number): Promise<void> {
  const { probe, w, log } = run;
  const recordedInbound = async () => {
    const c = await probe.countByType();
    return INBOUND_TYPES.reduce((a, t) => a + (c[t] ?? 0), 0);
  };
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    let n = -1;
    try {
      n = await recordedInbound();
    } catch (err) {
      log(`probe failed: ${(err as Error).message}`);
    }
    if (n >= w.stats.unique) {
      log(`${what}: ${n}/${w.stats.unique} inbound events recorded`);
      return;
    }
    if (Date.now() > deadline) {
      log(`${what}: gave up at ${n}/${w.stats.unique}`);
      return;
    }
    if (n !== last) log(`${what}: ${n}/${w.stats.unique}`);
    last = n;
    await sleep(1000);
  }
}

/** The faults, running beside the producer: `done()` once every one happened. */
export interface Faults {
  chaos: Promise<void>;
  done(): boolean;
}

/** Kills at random moments; the broker restart and the store outage in between. */
export function startFaults(run: TortureRun): Faults {
  const { o, rand, sups, log, broker, fig, outageMs, proxy, sqliteFile, miss } = run;
  const brokerAt = Math.max(0, Math.floor(o.kills * 0.4));
  const outageAt = Math.max(0, Math.floor(o.kills * 0.7));
  const gap = o.killGapMs ?? [2000, 8000];
  let chaosDone = false;
  const chaos = (async () => {
    for (let i = 0; i < o.kills; i++) {
      const victim = Math.floor(rand() * sups.length);
      await sups[victim].ready();
      await sleep(gap[0] + rand() * (gap[1] - gap[0]));
      await sups[victim].kill();
      log(`fault: SIGKILL ${i + 1}/${o.kills}${sups.length > 1 ? ` (consumer ${victim + 1} of ${sups.length})` : ''}`);
      if (i === brokerAt) {
        await sleep(1000 + rand() * 2000);
        const t = Date.now();
        await broker.restart({ hard: o.brokerHardRestart ?? false });
        fig.brokerRestarts++;
        log(`fault: broker restarted (${o.brokerHardRestart ? 'hard' : 'graceful'}) in ${Date.now() - t} ms`);
      }
      if (i === outageAt) {
        for (const x of sups) await x.ready();
        await sleep(500 + rand() * 1500);
        log(`fault: store unavailable for ${outageMs} ms`);
        if (proxy) await proxy.cut(outageMs);
        else await lockSqlite(sqliteFile, outageMs);
        fig.storeOutages++;
        fig.storeOutageMs += outageMs;
        log('fault: store back');
      }
    }
    chaosDone = true;
  })();
  chaos.catch((err) => miss(`fault injection failed: ${(err as Error).stack}`));
  return { chaos, done: () => chaosDone };
}

/** Produces the workload in four phases (subscriptions, usage, upgrades, usage); returns every message produced. */
export async function producePhases(run: TortureRun, faults: Faults): Promise<OutMsg[]> {
  const { o, w, log, messaging, topics, misses, t0 } = run;
  const { chaos } = faults;
  const convergeMs = o.convergeTimeoutMs ?? 600_000;
  const subs = w.phaseSubscriptions();
  log(`phase 1: ${subs.length} subscription messages`);
  await produceAll(messaging, topics, subs, log);
  await converge(run, 'phase 1', convergeMs);
  const usageTotal = Math.max(0, o.events - w.stats.unique - w.upgradeCount());
  const half = Math.floor(usageTotal / 2);
  const usageA = w.phaseUsage(half, Date.now(), true);
  log(`phase 2: ${usageA.length} usage messages`);
  await produceAll(messaging, topics, usageA, log);
  await converge(run, 'phase 2', convergeMs);
  const ups = w.phaseUpgrades(Date.now());
  log(`phase 3: ${ups.length} upgrade messages`);
  await produceAll(messaging, topics, ups, log);
  await converge(run, 'phase 3', convergeMs);
  const usageB = w.phaseUsage(usageTotal - half, Date.now(), false);
  log(`phase 4: ${usageB.length} usage messages`);
  await produceAll(messaging, topics, usageB, log);
  if (o.sabotage) {
    const victim = w.plans[0].id;
    w.model.add({ type: 'generation-performed', eventId: `${victim}-phantom`, spaceId: victim, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: iso(Date.now()) });
    log(`sabotage: the model holds one event for ${victim} that was never produced`);
  }
  while (!faults.done() && misses.length === 0) await sleep(500);
  await chaos.catch(() => undefined);
  await converge(run, 'final', convergeMs);
  // Every boundary placed inside the run must have fallen due (and had a scheduler pass) before the checks.
  const windowEnd = t0 + (o.resetWindowMs ?? [20_000, 60_000])[1] + 8000;
  if (Date.now() < windowEnd) {
    log(`waiting ${Math.round((windowEnd - Date.now()) / 1000)} s for the last boundaries placed in the run to fall due`);
    await sleep(windowEnd - Date.now());
  }
  return [...subs, ...usageA, ...ups, ...usageB];
}
