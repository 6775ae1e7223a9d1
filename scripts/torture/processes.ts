/**
 * The processes and clients of the fault run (see torture.ts): the service supervisor, the inbound
 * auditor, the producer, the ops CLI, and small helpers.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type Messaging } from '@metering/messaging';
import { ROOT, type RunningApp } from '../../test/support/app-process';
import { startSnapshotApp } from '../../test/support/fault-process';
import { type TestTopics } from '../../test/support/kafka-app';
import { type OutMsg } from '../../test/support/workload';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
export class InboundAuditor {
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

export async function fetchJson(url: string): Promise<any> {
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

export function runCli(cli: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(clean)) if (k.startsWith('KAFKA_') || k === 'EVENT_STORE' || k === 'DATABASE_URL') delete clean[k];
    execFile(process.execPath, [cli, ...args], { cwd: ROOT, env: { ...clean, ...env }, maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
