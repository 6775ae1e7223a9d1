/**
 * The fault run (issue 7): the built service consuming from a real Kafka broker while it is killed
 * with SIGKILL, the broker is restarted, the store is made unavailable, every valid event is
 * delivered 1-3 times and poison messages are mixed in. At the end every Space's balances are
 * compared with an independent reference model (test/support/reference-model.ts), every poison
 * record with the dead-letter topic, every threshold and reset with the outbound topics, and the
 * ops audit must find no difference. Used by scripts/torture/run.ts (full size) and
 * test/torture/torture.test.ts (short form).
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { type Messaging, createKafkaJsMessaging } from '@metering/messaging';
import { ROOT, type RunningApp, tempDir } from '../../test/support/app-process';
import { type ServiceSnapshot, snapshotService, startSnapshotApp } from '../../test/support/fault-process';
import { TcpFaultProxy, lockSqlite } from '../../test/support/fault-store';
import { type TestTopics, TopicCollector, kafkaEnv, testTopics } from '../../test/support/kafka-app';
import { REF_POOLS, ReferenceModel } from '../../test/support/reference-model';
import { prng } from '../../test/support/prng';
import { type OutMsg, TortureWorkload, iso } from './workload';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startBroker } = require('../kafka/broker') as typeof import('../kafka/broker');
type KafkaBroker = Awaited<ReturnType<typeof startBroker>>;

export interface TortureOptions {
  store: 'sqlite' | 'postgres';
  /** Unique valid events (subscriptions, upgrades, usage). */
  events: number;
  spaces: number;
  /** SIGKILLs of the consumer process. */
  kills: number;
  seed?: number;
  /** Pause between kills (ms, uniform), counted from the restarted process being ready. */
  killGapMs?: [number, number];
  /** Poison messages per unique valid event. Default 0.02 (each valid event is delivered ~1.7 times: > 1 % of the records). */
  poisonRate?: number;
  /** How long the store is unavailable. Default 8 s. */
  outageMs?: number;
  /** Boundaries of anchors that reset during the run fall this long after the start. */
  resetWindowMs?: [number, number];
  /** Use this broker (it is restarted once); default: start a fresh one and stop it at the end. */
  broker?: KafkaBroker;
  brokerHardRestart?: boolean;
  pgUrl?: string;
  log?: (line: string) => void;
  /** PostgreSQL only: service processes in one consumer group (each killed at random). Default 1. */
  consumers?: number;
  /** Check of the checks: add a usage event to the model that is never produced (the run must fail). */
  sabotage?: boolean;
  /** Give up waiting for the service to catch up after this long. Default 10 min. */
  convergeTimeoutMs?: number;
}

export interface TortureFigures {
  store: string;
  consumers: number;
  seed: number;
  spaces: number;
  uniqueEvents: number;
  subscriptions: number;
  upgrades: number;
  usageEvents: number;
  lateEvents: number;
  deliveries: number;
  inboundRecords: number;
  poisonRecords: number;
  poisonShare: string;
  kills: number;
  unexpectedExits: number;
  brokerRestarts: number;
  storeOutages: number;
  storeOutageMs: number;
  resetsExpected: number;
  resetsDuringRun: number;
  thresholdsInStore: number;
  thresholdsOnKafka: number;
  /** Outbound records (thresholds, resets, dead letters) published more than once under one id: the relay is at-least-once. */
  outboundRepeats: number;
  lost: number;
  doubled: number;
  balanceMismatches: number;
  periodMismatches: number;
  dlqCount: number;
  dlqMisses: number;
  thresholdMisses: number;
  resetMisses: number;
  auditDifferences: number;
  auditExit: number | null;
  durationS: number;
}

export interface TortureResult {
  figures: TortureFigures;
  misses: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const INBOUND_TYPES = ['SubscriptionChanged', 'GenerationRecorded', 'BatchExportRecorded'];

/** Reads the store directly (never through the service under test). */
export interface StoreProbe {
  countByType(): Promise<Record<string, number>>;
  countByStreamAndType(): Promise<Map<string, Record<string, number>>>;
  idsOfType(types: string[]): Promise<Set<string>>;
  close(): Promise<void>;
}

function sqliteProbe(file: string): StoreProbe {
  const q = <T>(sql: string): T[] => {
    if (!fs.existsSync(file)) return [];
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  };
  return {
    async countByType() {
      const out: Record<string, number> = {};
      for (const r of q<{ type: string; n: number }>('SELECT type, count(*) AS n FROM events GROUP BY type')) out[r.type] = r.n;
      return out;
    },
    async countByStreamAndType() {
      const out = new Map<string, Record<string, number>>();
      for (const r of q<{ s: string; type: string; n: number }>('SELECT stream_name AS s, type, count(*) AS n FROM events GROUP BY stream_name, type')) {
        if (!out.has(r.s)) out.set(r.s, {});
        out.get(r.s)![r.type] = r.n;
      }
      return out;
    },
    async idsOfType(types) {
      return new Set(q<{ id: string }>(`SELECT event_id AS id FROM events WHERE type IN (${types.map((t) => `'${t}'`).join(',')})`).map((r) => r.id));
    },
    async close() {},
  };
}

export function pgProbe(url: string, schema: string): StoreProbe {
  let client: Client | null = null;
  const q = async <T>(sql: string): Promise<T[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!client) {
          client = new Client({ connectionString: url });
          client.on('error', () => undefined);
          await client.connect();
        }
        const exists = await client.query(`SELECT to_regclass('"${schema}".events') AS t`);
        if (!exists.rows[0].t) return [];
        return (await client.query(sql)).rows as T[];
      } catch (err) {
        await client?.end().catch(() => undefined);
        client = null;
        if (attempt >= 5) throw err;
        await sleep(500);
      }
    }
  };
  return {
    async countByType() {
      const out: Record<string, number> = {};
      for (const r of await q<{ type: string; n: string }>(`SELECT type, count(*) AS n FROM "${schema}".events GROUP BY type`)) out[r.type] = Number(r.n);
      return out;
    },
    async countByStreamAndType() {
      const out = new Map<string, Record<string, number>>();
      for (const r of await q<{ s: string; type: string; n: string }>(`SELECT stream_name AS s, type, count(*) AS n FROM "${schema}".events GROUP BY stream_name, type`)) {
        if (!out.has(r.s)) out.set(r.s, {});
        out.get(r.s)![r.type] = Number(r.n);
      }
      return out;
    },
    async idsOfType(types) {
      return new Set((await q<{ id: string }>(`SELECT event_id::text AS id FROM "${schema}".events WHERE type IN (${types.map((t) => `'${t}'`).join(',')})`)).map((r) => r.id));
    },
    async close() {
      await client?.end().catch(() => undefined);
    },
  };
}

/** One service process, restarted after every kill and after any exit nobody asked for. */
export class Supervisor {
  app: RunningApp | null = null;
  kills = 0;
  unexpectedExits = 0;
  private expectExit = false;
  private starting: Promise<void> | null = null;
  stopped = false;
  startError: Error | null = null;
  exitLogs: string[] = [];

  constructor(private readonly main: string, private readonly env: Record<string, string>, private readonly dataDir: string, private readonly log: (l: string) => void) {}

  start(): Promise<void> {
    if (!this.starting)
      this.starting = (async () => {
        for (let attempt = 1; !this.stopped; attempt++) {
          let proc: ChildProcess | undefined;
          try {
            const app = await startSnapshotApp(this.main, this.env, this.dataDir, (p) => (proc = p));
            this.app = app;
            this.expectExit = false;
            app.proc.once('exit', (code, signal) => {
              if (this.expectExit || this.stopped) return;
              this.unexpectedExits++;
              this.exitLogs.push(app.logs().slice(-3000));
              this.log(`service exited unexpectedly (code ${code}, signal ${signal}); restarting. Last log:\n${app.logs().slice(-1500)}`);
              this.app = null;
              void this.start();
            });
            return;
          } catch (err) {
            if (proc && proc.exitCode === null) proc.kill('SIGKILL');
            this.log(`service start attempt ${attempt} failed: ${String((err as Error).message).slice(0, 400)}`);
            if (/exited with 2\b/.test(String((err as Error).message)) || attempt >= 30) {
              this.startError = err as Error;
              this.stopped = true;
              return;
            }
            await sleep(1000);
          }
        }
      })().finally(() => (this.starting = null));
    return this.starting;
  }

  async ready(): Promise<RunningApp> {
    while (!this.app) {
      if (this.startError) throw this.startError;
      if (this.starting) await this.starting;
      else await sleep(100);
    }
    return this.app;
  }

  async kill(): Promise<void> {
    const app = await this.ready();
    this.expectExit = true;
    const exited = new Promise((r) => app.proc.once('exit', r));
    app.proc.kill('SIGKILL');
    await exited;
    this.app = null;
    this.kills++;
    await this.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.starting) await this.starting.catch(() => undefined);
    this.expectExit = true;
    await this.app?.stop();
    this.app = null;
  }
}

/** Reads the inbound topics from the beginning: every record's (topic, partition, offset), poison tokens. */
class InboundAuditor {
  readonly records = new Set<string>();
  readonly poison = new Map<string, string[]>(); // token -> [topic/partition/offset]
  private consumer: ReturnType<Messaging['batchConsumer']> | null = null;
  constructor(private readonly messaging: Messaging, private readonly topics: string[]) {}
  async start(): Promise<this> {
    this.consumer = this.messaging.batchConsumer({ groupId: `torture-inbound-${randomUUID()}`, topics: this.topics, fromBeginning: true, maxWaitTimeMs: 300, partitionsConsumedConcurrently: 3, sessionTimeoutMs: 6000 });
    await this.consumer.run(async (batch) => {
      for (const m of batch.messages) {
        const where = `${batch.topic}/${batch.partition}/${m.offset}`;
        if (this.records.has(where)) continue;
        this.records.add(where);
        const s = m.value.toString('utf8');
        const i = s.indexOf('torture-poison-');
        if (i >= 0) {
          const token = /torture-poison-[A-Za-z0-9_-]+/.exec(s.slice(i))![0];
          this.poison.set(token, [...(this.poison.get(token) ?? []), where]);
        }
      }
    });
    return this;
  }
  async stop(): Promise<void> {
    await this.consumer?.stop();
  }
}

export async function produceAll(messaging: Messaging, topics: TestTopics, msgs: OutMsg[], log: (l: string) => void): Promise<void> {
  const topicOf = { sub: topics.subscriptionChanged, gen: topics.generationPerformed, batch: topics.batchExported };
  let producer = messaging.producer();
  const CHUNK = 400;
  try {
    for (let i = 0; i < msgs.length; i += CHUNK) {
      const chunk = msgs.slice(i, i + CHUNK);
      // Consecutive runs of one topic, in order.
      const runs: { topic: string; messages: { key: string; value: string }[] }[] = [];
      for (const m of chunk) {
        const t = topicOf[m.topic];
        if (!runs.length || runs[runs.length - 1].topic !== t) runs.push({ topic: t, messages: [] });
        runs[runs.length - 1].messages.push({ key: m.key, value: m.value });
      }
      for (const run of runs)
        for (let attempt = 1; ; attempt++) {
          try {
            await producer.send(run.topic, run.messages);
            break;
          } catch (err) {
            // The broker may be restarting. A retried send can write some messages twice: the
            // inbound auditor counts records, not sends, so the checks stay exact.
            if (attempt % 5 === 1) log(`produce failed (attempt ${attempt}): ${(err as Error).message}; retrying`);
            await producer.close().catch(() => undefined);
            await sleep(1000);
            producer = messaging.producer();
          }
        }
    }
  } finally {
    await producer.close().catch(() => undefined);
  }
}

async function fetchJson(url: string): Promise<any> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

export async function mapLimit<T, R>(xs: T[], width: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(xs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < xs.length) {
        const i = next++;
        out[i] = await f(xs[i]);
      }
    }),
  );
  return out;
}

function runCli(cli: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(clean)) if (k.startsWith('KAFKA_') || k === 'EVENT_STORE' || k === 'DATABASE_URL') delete clean[k];
    execFile(process.execPath, [cli, ...args], { cwd: ROOT, env: { ...clean, ...env }, maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export async function runTorture(o: TortureOptions): Promise<TortureResult> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const seed = o.seed ?? 7;
  const rand = prng(seed ^ 0x5eed);
  const misses: string[] = [];
  const miss = (m: string) => {
    misses.push(m);
    log(`MISS: ${m}`);
  };
  const tag = `${o.store === 'sqlite' ? 's' : 'p'}${randomUUID().slice(0, 6)}`;
  const pgUrl = o.pgUrl ?? process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `torture_${tag}`;
  const dataDir = tempDir('metering-torture-');
  const sqliteFile = path.join(dataDir, 'metering.db');
  const outageMs = o.outageMs ?? 8000;
  const ownBroker = !o.broker;
  const broker = o.broker ?? (await startBroker({ fresh: true, log: (m: string) => log(`broker: ${m}`) }));
  log(`broker ${broker.mode} ${broker.version} at ${broker.brokers}`);
  const messaging = createKafkaJsMessaging({ clientId: `torture-${tag}`, brokers: broker.brokers.split(',') }, { logLevel: 'error', logger: () => undefined });
  const topics = testTopics(`torture-${tag}`);
  let proxy: TcpFaultProxy | null = null;
  const storeEnv: Record<string, string> = {};
  let probe: StoreProbe;
  const cliEnv: Record<string, string> = { DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  if (o.store === 'postgres') {
    const u = new URL(pgUrl);
    proxy = new TcpFaultProxy(u.hostname, Number(u.port || 5432));
    const port = await proxy.start();
    const viaProxy = new URL(pgUrl);
    viaProxy.port = String(port);
    Object.assign(storeEnv, { EVENT_STORE: 'postgres', DATABASE_URL: viaProxy.toString(), PG_SCHEMA: schema });
    Object.assign(cliEnv, { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl, PG_SCHEMA: schema });
    probe = pgProbe(pgUrl, schema);
  } else {
    Object.assign(storeEnv, { EVENT_STORE: 'sqlite', SQLITE_SYNCHRONOUS: 'full' });
    probe = sqliteProbe(sqliteFile);
  }
  const env: Record<string, string> = {
    ...storeEnv,
    ...kafkaEnv(topics, `torture-${tag}`, 4, broker.brokers),
    SCHEDULER_INTERVAL_MS: '1000',
  };
  const snapshot: ServiceSnapshot = snapshotService();
  const consumers = o.store === 'postgres' ? Math.max(1, o.consumers ?? 1) : 1;
  const sups = Array.from({ length: consumers }, () => new Supervisor(snapshot.main, env, dataDir, log));
  const sup = sups[0];
  const collectors: TopicCollector[] = [];
  let inbound: InboundAuditor | null = null;
  const fig: TortureFigures = {
    store: o.store, consumers: 1, seed, spaces: o.spaces, uniqueEvents: 0, subscriptions: 0, upgrades: 0, usageEvents: 0, lateEvents: 0, deliveries: 0, inboundRecords: 0, poisonRecords: 0, poisonShare: '',
    kills: 0, unexpectedExits: 0, brokerRestarts: 0, storeOutages: 0, storeOutageMs: 0, resetsExpected: 0, resetsDuringRun: 0, thresholdsInStore: 0, thresholdsOnKafka: 0, outboundRepeats: 0,
    lost: 0, doubled: 0, balanceMismatches: 0, periodMismatches: 0, dlqCount: 0, dlqMisses: 0, thresholdMisses: 0, resetMisses: 0, auditDifferences: 0, auditExit: null, durationS: 0,
  };
  fig.consumers = consumers;
  const t0 = Date.now();
  const w = new TortureWorkload(
    { seed, spaces: o.spaces, events: o.events, resetWindowMs: o.resetWindowMs ?? [20_000, 60_000], poisonRate: o.poisonRate ?? 0.02, lateRate: 0.04, tag },
    t0,
  );
  try {
    await sup.start(); // creates the topics
    for (const other of sups.slice(1)) await other.start();
    log(`service up (${o.store}, data ${dataDir}${o.store === 'postgres' ? `, schema ${schema}` : ''})`);
    const thresholds = await new TopicCollector(messaging, topics.thresholdCrossed).start();
    const resets = await new TopicCollector(messaging, topics.periodReset).start();
    const dlq = await new TopicCollector(messaging, topics.deadLetter).start();
    collectors.push(thresholds, resets, dlq);
    inbound = await new InboundAuditor(messaging, [topics.generationPerformed, topics.batchExported, topics.subscriptionChanged]).start();

    const recordedInbound = async () => {
      const c = await probe.countByType();
      return INBOUND_TYPES.reduce((a, t) => a + (c[t] ?? 0), 0);
    };
    const converge = async (what: string, timeoutMs: number) => {
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
    };

    // Faults: kills at random moments; the broker restart and the store outage in between.
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

    const convergeMs = o.convergeTimeoutMs ?? 600_000;
    const subs = w.phaseSubscriptions();
    log(`phase 1: ${subs.length} subscription messages`);
    await produceAll(messaging, topics, subs, log);
    await converge('phase 1', convergeMs);
    const usageTotal = Math.max(0, o.events - w.stats.unique - w.upgradeCount());
    const half = Math.floor(usageTotal / 2);
    const usageA = w.phaseUsage(half, Date.now(), true);
    log(`phase 2: ${usageA.length} usage messages`);
    await produceAll(messaging, topics, usageA, log);
    await converge('phase 2', convergeMs);
    const ups = w.phaseUpgrades(Date.now());
    log(`phase 3: ${ups.length} upgrade messages`);
    await produceAll(messaging, topics, ups, log);
    await converge('phase 3', convergeMs);
    const usageB = w.phaseUsage(usageTotal - half, Date.now(), false);
    log(`phase 4: ${usageB.length} usage messages`);
    await produceAll(messaging, topics, usageB, log);
    if (o.sabotage) {
      const victim = w.plans[0].id;
      w.model.add({ type: 'generation-performed', eventId: `${victim}-phantom`, spaceId: victim, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: iso(Date.now()) });
      log(`sabotage: the model holds one event for ${victim} that was never produced`);
    }
    while (!chaosDone && misses.length === 0) await sleep(500);
    await chaos.catch(() => undefined);
    await converge('final', convergeMs);
    // Every boundary placed inside the run must have fallen due (and had a scheduler pass) before the checks.
    const windowEnd = t0 + (o.resetWindowMs ?? [20_000, 60_000])[1] + 8000;
    if (Date.now() < windowEnd) {
      log(`waiting ${Math.round((windowEnd - Date.now()) / 1000)} s for the last boundaries placed in the run to fall due`);
      await sleep(windowEnd - Date.now());
    }

    // Let the scheduler reach every boundary up to `cutoff`, the relay publish everything.
    const cutoff = Date.now() - 5000;
    const ids = w.model.spaceIds().concat(w.plans.map((p) => p.id)).filter((v, i, a) => a.indexOf(v) === i);
    const expectedResets = new Map<string, number[]>();
    for (const id of ids) expectedResets.set(id, w.model.resets(id, cutoff));
    fig.resetsExpected = [...expectedResets.values()].reduce((a, b) => a + b.length, 0);
    fig.resetsDuringRun = [...expectedResets.values()].reduce((a, b) => a + b.filter((x) => x >= t0).length, 0);
    const storeIds = async () => ({
      thresholds: await probe.idsOfType(['ThresholdCrossed']),
      resets: await probe.idsOfType(['PeriodReset']),
      dead: await probe.idsOfType(['DeadLetterRecorded']),
    });
    const header = (m: { headers: Record<string, string> }) => m.headers['event-id'];
    const kafkaIds = (c: TopicCollector) => new Set(c.messages.map(header));
    let sIds = await storeIds();
    const outDeadline = Date.now() + Math.min(convergeMs, 180_000);
    for (;;) {
      sIds = await storeIds();
      const pending =
        [...sIds.thresholds].filter((x) => !kafkaIds(thresholds).has(x)).length +
        [...sIds.resets].filter((x) => !kafkaIds(resets).has(x)).length +
        [...sIds.dead].filter((x) => !kafkaIds(dlq).has(x)).length;
      const resetsOk = coveredBoundaries(resets.messages, expectedResets, header).size >= fig.resetsExpected;
      const deadOk = sIds.dead.size >= inbound.poison.size;
      if ((pending === 0 && resetsOk && deadOk) || Date.now() > outDeadline) {
        log(`outbound: ${pending} stored events not yet on Kafka; reset boundaries on Kafka ${coveredBoundaries(resets.messages, expectedResets, header).size}/${fig.resetsExpected} (${sIds.resets.size} reset events stored); dead letters stored ${sIds.dead.size}, poison records ${[...inbound.poison.values()].flat().length}`);
        break;
      }
      await sleep(1000);
    }
    fig.kills = sups.reduce((a, x) => a + x.kills, 0);
    fig.unexpectedExits = sups.reduce((a, x) => a + x.unexpectedExits, 0);

    // 1. Nothing lost, nothing doubled: recorded inbound events per Space and type vs the model.
    const byStream = await probe.countByStreamAndType();
    for (const id of ids) {
      const s = w.model.space(id);
      const got = byStream.get(`space-${id}`) ?? {};
      const usage = (got.GenerationRecorded ?? 0) + (got.BatchExportRecorded ?? 0);
      const subsGot = got.SubscriptionChanged ?? 0;
      for (const [exp, act, what] of [[s.usageCount, usage, 'usage'], [s.subscriptionCount, subsGot, 'subscription']] as [number, number, string][]) {
        if (act < exp) {
          fig.lost += exp - act;
          miss(`${id}: ${exp - act} ${what} events lost (${act}/${exp} recorded)`);
        } else if (act > exp) {
          fig.doubled += act - exp;
          miss(`${id}: ${act - exp} ${what} events doubled (${act}/${exp} recorded)`);
        }
      }
    }

    // 2. The usage screen of every Space equals the model (polled while the projection catches up).
    let viewMisses: string[] = [];
    for (let round = 0; round < 20; round++) {
      viewMisses = [];
      const checks = await mapLimit(ids, 12, async (id) => {
        for (let attempt = 0; ; attempt++) {
          try {
            const now = Date.now();
            const v = await fetchJson(`${(await sup.ready()).url}/v1/spaces/${encodeURIComponent(id)}/usage`);
            const e = w.model.view(id, Date.parse(v.asOf ?? iso(now)));
            const diffs: string[] = [];
            if (v.plan !== e.plan || v.cycle !== e.cycle) diffs.push(`plan ${v.plan}/${v.cycle} != ${e.plan}/${e.cycle}`);
            if (Date.parse(v.periodStart) !== e.periodStart) diffs.push(`periodStart ${v.periodStart} != ${iso(e.periodStart)}`);
            if ((v.periodEnd === null ? null : Date.parse(v.periodEnd)) !== e.periodEnd) diffs.push(`periodEnd ${v.periodEnd} != ${e.periodEnd === null ? null : iso(e.periodEnd)}`);
            for (const p of REF_POOLS) {
              if (v.pools[p].used !== e.used[p]) diffs.push(`${p} used ${v.pools[p].used} != ${e.used[p]}`);
              if (v.pools[p].limit !== e.limits[p]) diffs.push(`${p} limit ${v.pools[p].limit} != ${e.limits[p]}`);
            }
            return diffs.length ? `${id}: ${diffs.join('; ')}` : null;
          } catch (err) {
            if (attempt > 20) return `${id}: usage not readable: ${(err as Error).message}`;
            await sleep(500);
          }
        }
      });
      viewMisses = checks.filter((x): x is string => x !== null);
      if (viewMisses.length === 0) break;
      log(`usage screens: ${viewMisses.length} differ from the model (round ${round + 1}); e.g. ${viewMisses[0]}`);
      await sleep(1500);
    }
    fig.balanceMismatches = viewMisses.length;
    for (const m of viewMisses.slice(0, 20)) miss(`balance: ${m}`);
    if (viewMisses.length > 20) miss(`balance: ... and ${viewMisses.length - 20} more`);

    // 3. Dead letters: every poison record exactly once, with its reason; nothing valid dead-lettered.
    // Give the collectors a moment to see the last relayed messages.
    await sleep(1500);
    const poisonByToken = new Map<string, OutMsg>();
    for (const m of [...subs, ...usageA, ...ups, ...usageB]) if (m.poison) poisonByToken.set(m.poison.token, m);
    const dlqById = new Map<string, (typeof dlq.messages)[number]>();
    for (const m of dlq.messages) dlqById.set(header(m), m);
    fig.dlqCount = dlqById.size;
    const lettersBySource = new Map<string, string[]>();
    for (const [id, m] of dlqById) {
      const where = `${m.headers['dlq-source-topic']}/${m.headers['dlq-source-partition']}/${m.headers['dlq-source-offset']}`;
      lettersBySource.set(where, [...(lettersBySource.get(where) ?? []), id]);
    }
    const poisonRecords = new Set<string>();
    for (const [token, wheres] of inbound.poison) {
      const m = poisonByToken.get(token);
      for (const where of wheres) {
        poisonRecords.add(where);
        const letters = lettersBySource.get(where) ?? [];
        if (letters.length !== 1) {
          fig.dlqMisses++;
          miss(`dead letters: poison ${token} (${m?.poison?.kind}) at ${where} is in the DLQ ${letters.length} times`);
          continue;
        }
        const l = dlqById.get(letters[0])!;
        const errors = l.headers['dlq-errors'] ?? '';
        if (!l.headers['dlq-reason'] || (m?.poison && !errors.includes(m.poison.expect))) {
          fig.dlqMisses++;
          miss(`dead letters: poison ${token} (${m?.poison?.kind}) has reason "${l.headers['dlq-reason']}" / errors ${errors.slice(0, 200)}; expected a mention of ${m?.poison?.expect}`);
        }
        if (l.value.toString('utf8') !== m?.value) {
          fig.dlqMisses++;
          miss(`dead letters: poison ${token}: the dead letter does not carry the original bytes`);
        }
      }
    }
    for (const token of poisonByToken.keys())
      if (!inbound.poison.has(token)) {
        fig.dlqMisses++;
        miss(`poison ${token} was produced but never seen on its topic`);
      }
    for (const [where, letters] of lettersBySource)
      if (!poisonRecords.has(where)) {
        fig.dlqMisses++;
        miss(`dead letters: ${letters.length} letter(s) for ${where}, which is not a poison record: ${dlqById.get(letters[0])!.headers['dlq-reason']}`);
      }
    fig.poisonRecords = poisonRecords.size;
    fig.inboundRecords = inbound.records.size;
    fig.poisonShare = `${((100 * poisonRecords.size) / Math.max(1, inbound.records.size)).toFixed(2)} %`;

    // 4. Resets: on Kafka exactly once per (Space, boundary) by id, and exactly the model's. One
    // PeriodReset covers every boundary from its firstBoundary to its periodStart (a catch-up).
    const resetsBy = coveredBoundaries(resets.messages, expectedResets, header);
    for (const [k, idsOf] of resetsBy)
      if (idsOf.size !== 1) {
        fig.resetMisses++;
        miss(`reset ${k} reached Kafka under ${idsOf.size} ids`);
      }
    for (const [id, bs] of expectedResets)
      for (const b of bs)
        if (!resetsBy.has(`${id}|${b}`)) {
          fig.resetMisses++;
          miss(`reset of ${id} at ${iso(b)} never reached Kafka`);
        }
    for (const k of resetsBy.keys()) {
      const [id, b] = [k.slice(0, k.lastIndexOf('|')), Number(k.slice(k.lastIndexOf('|') + 1))];
      if (b <= cutoff && !(expectedResets.get(id) ?? []).includes(b)) {
        fig.resetMisses++;
        miss(`reset of ${id} at ${iso(b)} is not a boundary of the model`);
      }
    }
    for (const x of sIds.resets)
      if (!kafkaIds(resets).has(x)) {
        fig.resetMisses++;
        miss(`stored reset ${x} never reached Kafka`);
      }

    // 5. Thresholds: every stored one on Kafka; exactly one id per (Space, pool, period, threshold);
    // those the model says the open period reached are there.
    const thrBy = new Map<string, Set<string>>();
    for (const m of thresholds.messages) {
      const body = JSON.parse(m.value.toString('utf8'));
      const k = `${body.data.spaceId}|${body.data.pool}|${Date.parse(body.data.periodStart)}|${body.data.threshold}`;
      if (!thrBy.has(k)) thrBy.set(k, new Set());
      thrBy.get(k)!.add(header(m));
    }
    fig.thresholdsOnKafka = thrBy.size;
    // Distinct records (a collector may read a record twice after the broker restart) minus distinct ids.
    fig.outboundRepeats = [thresholds, resets, dlq].reduce((a, c) => a + new Set(c.messages.map((m) => `${m.partition}/${m.offset}`)).size - kafkaIds(c).size, 0);
    fig.thresholdsInStore = sIds.thresholds.size;
    for (const [k, idsOf] of thrBy)
      if (idsOf.size !== 1) {
        fig.thresholdMisses++;
        fig.doubled++;
        miss(`threshold ${k} reached Kafka under ${idsOf.size} ids`);
      }
    for (const x of sIds.thresholds)
      if (!kafkaIds(thresholds).has(x)) {
        fig.thresholdMisses++;
        miss(`stored threshold ${x} never reached Kafka`);
      }
    const checkAt = Date.now();
    const catalogThresholds = w.model.catalog.thresholds;
    for (const id of ids) {
      const v = w.model.view(id, checkAt);
      for (const pool of REF_POOLS)
        for (const t of catalogThresholds)
          if (ReferenceModel.reaches(v.used[pool], v.limits[pool], t) && !thrBy.has(`${id}|${pool}|${v.periodStart}|${t}`)) {
            fig.thresholdMisses++;
            miss(`threshold ${t} % of ${pool} of ${id} in the period from ${iso(v.periodStart)} was reached (${v.used[pool]}/${v.limits[pool]}) but never notified`);
          }
    }

    // 6. Stop the service; the ops audit replays every stream and compares it with the read model.
    for (const x of sups) await x.stop();
    const audit = await runCli(snapshot.cli, ['audit', '--all', '--format', 'json'], cliEnv);
    fig.auditExit = audit.code;
    const reports = audit.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l) as { spaceId: string; differences: unknown[]; periods: { start: string; used: Record<string, number>; usageEvents: number; thresholdsFired: string[]; resets: string[] }[] });
    fig.auditDifferences = reports.reduce((a, r) => a + r.differences.length, 0);
    if (audit.code !== 0 || fig.auditDifferences > 0) miss(`audit: exit ${audit.code}, ${fig.auditDifferences} differences: ${audit.stderr.slice(-500)} ${JSON.stringify(reports.find((r) => r.differences.length)?.differences ?? []).slice(0, 500)}`);
    // Per-period usage of the replay vs the model; thresholds in the store vs those on Kafka.
    const storeThr = new Set<string>();
    for (const r of reports) {
      const s = w.model.space(r.spaceId);
      const seen = new Set<number>();
      for (const p of r.periods) {
        const start = Date.parse(p.start);
        seen.add(start);
        const exp = s.used.get(start) ?? { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 };
        const expEvents = s.usageEvents.get(start) ?? 0;
        if (REF_POOLS.some((pool) => (p.used[pool] ?? 0) !== exp[pool]) || p.usageEvents !== expEvents) {
          fig.periodMismatches++;
          miss(`period ${r.spaceId} ${p.start}: used ${JSON.stringify(p.used)} in ${p.usageEvents} events, model ${JSON.stringify(exp)} in ${expEvents}`);
        }
        if (p.resets.length > 1) {
          fig.resetMisses++;
          miss(`period ${r.spaceId} ${p.start} was opened by ${p.resets.length} resets`);
        }
        for (const f of p.thresholdsFired) {
          const [pool, t] = f.split('@');
          storeThr.add(`${r.spaceId}|${pool}|${start}|${t}`);
        }
      }
      for (const [start, n] of s.usageEvents)
        if (n > 0 && !seen.has(start)) {
          fig.periodMismatches++;
          miss(`period ${r.spaceId} ${iso(start)}: the model has ${n} usage events there, the audit no such period`);
        }
    }
    if (reports.length === 0) miss('audit printed no report');
    for (const k of storeThr)
      if (!thrBy.has(k)) {
        fig.thresholdMisses++;
        miss(`threshold ${k} fired in the store but is not on Kafka`);
      }
    for (const k of thrBy.keys())
      if (!storeThr.has(k)) {
        fig.thresholdMisses++;
        miss(`threshold ${k} on Kafka is not among the store's fired thresholds`);
      }

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
    for (const x of sups) await x.stop().catch(() => undefined);
    for (const c of collectors) await c.stop().catch(() => undefined);
    await inbound?.stop().catch(() => undefined);
    await probe.close();
    await proxy?.stop();
    if (ownBroker) await broker.stop().catch(() => undefined);
    if (o.store === 'postgres') {
      const c = new Client({ connectionString: pgUrl });
      try {
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } catch {
        /* best effort */
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    snapshot.remove();
  }
  fig.durationS = Math.round((Date.now() - started) / 1000);
  if (misses.length === 0 && (fig.lost !== 0 || fig.doubled !== 0)) misses.push('lost or doubled is not zero');
  return { figures: fig, misses };
}

export function formatFigures(f: TortureFigures): string {
  return [
    `store ${f.store} (${f.consumers} consumer process${f.consumers > 1 ? 'es in one group' : ''}), seed ${f.seed}, ${f.spaces} Spaces, ${f.durationS} s`,
    `events: ${f.uniqueEvents} unique valid (${f.subscriptions} subscriptions, ${f.upgrades} upgrades, ${f.usageEvents} usage of which ${f.lateEvents} late), ${f.deliveries} valid deliveries, ${f.inboundRecords} inbound records, ${f.poisonRecords} poison (${f.poisonShare})`,
    `faults: ${f.kills} SIGKILLs, ${f.brokerRestarts} broker restart, ${f.storeOutages} store outage (${f.storeOutageMs} ms), ${f.unexpectedExits} unexpected service exits`,
    `resets: ${f.resetsExpected} expected (${f.resetsDuringRun} fell due during the run); thresholds: ${f.thresholdsInStore} stored, ${f.thresholdsOnKafka} distinct on Kafka; ${f.outboundRepeats} outbound messages repeated (deduplicated by id)`,
    `lost = ${f.lost}, doubled = ${f.doubled}, balance mismatches = ${f.balanceMismatches}, period mismatches = ${f.periodMismatches}`,
    `DLQ count = ${f.dlqCount} (misses ${f.dlqMisses}), threshold misses = ${f.thresholdMisses}, reset misses = ${f.resetMisses}, audit differences = ${f.auditDifferences} (exit ${f.auditExit})`,
  ].join('\n');
}

/**
 * (Space|boundary) -> ids of the PeriodReset messages that cover it. A message covers the model's
 * boundaries from its `firstBoundary` to its `periodStart` (both included); it must cover exactly
 * `boundariesCovered` of them, or it covers a boundary the model does not have (reported as such).
 */
export function coveredBoundaries(
  messages: { value: Buffer; headers: Record<string, string> }[],
  expected: Map<string, number[]>,
  header: (m: { headers: Record<string, string> }) => string,
): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (k: string, id: string) => {
    if (!out.has(k)) out.set(k, new Set());
    out.get(k)!.add(id);
  };
  for (const m of messages) {
    const body = JSON.parse(m.value.toString('utf8'));
    const d = body.data as { spaceId: string; periodStart: string; firstBoundary?: string; boundariesCovered?: number };
    const last = Date.parse(d.periodStart);
    const first = d.firstBoundary ? Date.parse(d.firstBoundary) : last;
    const inModel = (expected.get(d.spaceId) ?? []).filter((b) => b >= first && b <= last);
    if (inModel.length !== (d.boundariesCovered ?? 1) || !inModel.includes(last)) add(`${d.spaceId}|${last}`, header(m));
    for (const b of inModel) add(`${d.spaceId}|${b}`, header(m));
  }
  return out;
}
