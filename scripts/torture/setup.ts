/**
 * Set-up and tear-down of one fault run (see torture.ts): the broker, the store (behind a fault
 * proxy for PostgreSQL), the service processes, the workload and the figures.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { type Messaging, createKafkaJsMessaging } from '@metering/messaging';
import { tempDir } from '../../test/support/app-process';
import { type ServiceSnapshot, snapshotService } from '../../test/support/fault-process';
import { TcpFaultProxy } from '../../test/support/fault-store';
import { type TestTopics, TopicCollector, kafkaEnv, testTopics } from '../../test/support/kafka-app';
import { type TortureFigures, type TortureOptions, emptyFigures } from './figures';
import { type StoreProbe, pgProbe, sqliteProbe } from './probes';
import { type InboundAuditor, Supervisor } from './processes';
import { TortureWorkload, prng } from '../../test/support/workload';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startBroker } = require('../kafka/broker') as typeof import('../kafka/broker');
type KafkaBroker = Awaited<ReturnType<typeof startBroker>>;

/** Everything one run holds: what it started, what it checks against, what it found. */
export interface TortureRun {
  o: TortureOptions;
  log: (line: string) => void;
  rand: () => number;
  misses: string[];
  miss: (m: string) => void;
  pgUrl: string;
  schema: string;
  dataDir: string;
  sqliteFile: string;
  outageMs: number;
  ownBroker: boolean;
  broker: KafkaBroker;
  messaging: Messaging;
  topics: TestTopics;
  proxy: TcpFaultProxy | null;
  probe: StoreProbe;
  cliEnv: Record<string, string>;
  snapshot: ServiceSnapshot;
  sups: Supervisor[];
  sup: Supervisor;
  collectors: TopicCollector[];
  inbound: InboundAuditor | null;
  fig: TortureFigures;
  t0: number;
  w: TortureWorkload;
}

export async function setUpRun(o: TortureOptions): Promise<TortureRun> {
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
  const fig = emptyFigures(o.store, seed, o.spaces);
  fig.consumers = consumers;
  const t0 = Date.now();
  const w = new TortureWorkload(
    { seed, spaces: o.spaces, events: o.events, resetWindowMs: o.resetWindowMs ?? [20_000, 60_000], poisonRate: o.poisonRate ?? 0.02, lateRate: 0.04, tag },
    t0,
  );
  return {
    o, log, rand, misses, miss, pgUrl, schema, dataDir, sqliteFile, outageMs, ownBroker, broker, messaging, topics, proxy, probe, cliEnv, snapshot,
    sups, sup: sups[0], collectors: [], inbound: null, fig, t0, w,
  };
}

/** Stops everything the run started and removes what it wrote (the PostgreSQL schema, the data directory). */
export async function tearDownRun(run: TortureRun): Promise<void> {
  const { o, sups, collectors, inbound, probe, proxy, ownBroker, broker, pgUrl, schema, dataDir, snapshot } = run;
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
