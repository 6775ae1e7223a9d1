/**
 * Issue 3: a consumer process killed with SIGKILL mid-batch and restarted loses nothing and
 * doubles nothing; two service processes in one consumer group share the partitions and the
 * totals are exact (on PostgreSQL, the store such a deployment would share).
 */
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Messaging } from '@metering/messaging';
import { type RunningApp, api, startApp, tempDir } from '../support/app-process';
import { kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';

jest.setTimeout(300_000);
const now = Date.now();

function workload(spaces: number, perSpace: number) {
  const ids = Array.from({ length: spaces }, (_, i) => `k${i}-${randomUUID().slice(0, 6)}`);
  const messages = ids.flatMap((spaceId) =>
    Array.from({ length: perSpace }, (_, j) => ({
      key: spaceId,
      value: JSON.stringify({
        eventId: randomUUID(), spaceId, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1 + (j % 2),
        occurredAt: new Date(now - j * 1000).toISOString(),
      }),
    })),
  );
  // Expected credits per Space: generations 1,2,1,2,... (ai_shadows costs 1 credit).
  const expected = Math.floor(perSpace / 2) * 3 + (perSpace % 2);
  return { ids, messages, expected };
}

async function totals(app: RunningApp, ids: string[]): Promise<number[]> {
  return Promise.all(ids.map(async (s) => (await api(app.url, 'GET', `/v1/spaces/${s}/usage`)).body.pools.ai_image_credits.used as number));
}

async function recordedCounts(app: RunningApp, ids: string[]): Promise<number[]> {
  return Promise.all(
    ids.map(async (s) => {
      let n = 0;
      for (let from = 0; ; from += 1000) {
        const page = (await api(app.url, 'GET', `/v1/spaces/${s}/events?fromRevision=${from}&limit=1000`)).body;
        n += page.events.filter((e: { type: string }) => e.type === 'GenerationRecorded').length;
        if (page.nextRevision === null) return n;
      }
    }),
  );
}

/** Credits per Space read straight from the SQLite file (the service is dead). */
async function totalsFromStore(dataDir: string, ids: string[]): Promise<number[]> {
  const db = new Database(path.join(dataDir, 'metering.db'), { readonly: true });
  try {
    const q = db.prepare("SELECT coalesce(sum(json_extract(data, '$.credits')), 0) AS c FROM events WHERE stream_name = ? AND type = 'GenerationRecorded'");
    return ids.map((s) => (q.get(`space-${s}`) as { c: number }).c);
  } finally {
    db.close();
  }
}

/** Highest global position in the SQLite file, read without the service. */
function storeHead(dataDir: string): number {
  const file = path.join(dataDir, 'metering.db');
  if (!fs.existsSync(file)) return 0;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT coalesce(max(global_position), 0) AS h FROM events').get() as { h: number }).h;
  } finally {
    db.close();
  }
}


describe('crashes and consumer groups', () => {
  let messaging: Messaging;
  beforeAll(() => {
    messaging = testMessaging();
  });

  it('SIGKILL mid-batch, three times: after restarts nothing is lost and nothing doubled', async () => {
    const topics = testTopics();
    const env = { ...kafkaEnv(topics, `crash-${randomUUID().slice(0, 8)}`, 2), SQLITE_SYNCHRONOUS: 'full' };
    const dataDir = tempDir('metering-crash-');
    // 3 x 24,000 messages over 400 Spaces: a round is more than one fetch of both partitions, so it is
    // more than one group commit and a kill can land after some of it is stored and before the rest.
    const PER_SPACE = 60;
    const rounds = [workload(400, PER_SPACE), workload(400, PER_SPACE), workload(400, PER_SPACE)];
    // Topics exist once a service has started.
    let app = await startApp(env, dataDir);
    await app.stop();
    const producer = messaging.producer();
    const midway: boolean[] = [];
    for (const round of rounds) {
      // In slices: one produce request must stay under the broker's message size limit.
      for (let i = 0; i < round.messages.length; i += 6000) await producer.send(topics.generationPerformed, round.messages.slice(i, i + 6000));
      const base = storeHead(dataDir);
      let proc: ChildProcess | undefined;
      const starting = startApp(env, dataDir, (p) => (proc = p)).catch(() => null);
      // Kill as soon as this process has appended something of this round: it is inside its batches.
      const at = await until(() => storeHead(dataDir), (h) => h > base, 'progress before the kill', 90_000, 5);
      const exited = new Promise((r) => proc!.once('exit', r));
      proc!.kill('SIGKILL');
      await exited;
      await starting;
      const done = (await totalsFromStore(dataDir, round.ids)).every((x) => x >= round.expected);
      midway.push(!done && at > base);
    }
    await producer.close();
    app = await startApp(env, dataDir);
    try {
      for (const round of rounds) {
        await until(() => totals(app, round.ids), (t) => t.every((x) => x >= round.expected), 'all usage after restarts', 120_000);
      }
      await new Promise((r) => setTimeout(r, 1000));
      for (const round of rounds) {
        expect(await totals(app, round.ids)).toEqual(round.ids.map(() => round.expected));
        expect(await recordedCounts(app, round.ids)).toEqual(round.ids.map(() => PER_SPACE));
      }
      // At least one kill landed while a round was only partly stored.
      expect(midway).toContain(true);
    } finally {
      await app.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('two processes in one group share the partitions and the totals are exact (PostgreSQL store)', async () => {
    const schema = freshSchemaName('kgroup');
    const topics = testTopics();
    const env = { ...kafkaEnv(topics, `group-${randomUUID().slice(0, 8)}`, 4), EVENT_STORE: 'postgres', DATABASE_URL: PG_URL, PG_SCHEMA: schema };
    const { ids, messages, expected } = workload(40, 50); // 2,000 messages over 4 partitions
    const a = await startApp(env);
    const b = await startApp(env);
    try {
      const producer = messaging.producer();
      await producer.send(topics.generationPerformed, messages);
      await producer.close();
      await until(() => totals(a, ids), (t) => t.every((x) => x >= expected), 'all usage', 180_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await totals(b, ids)).toEqual(ids.map(() => expected));
      expect(await recordedCounts(a, ids)).toEqual(ids.map(() => 50));
      const consumedA = (await api(a.url, 'GET', '/health/ready')).body.kafka.consumed;
      const consumedB = (await api(b.url, 'GET', '/health/ready')).body.kafka.consumed;
      expect(consumedA).toBeGreaterThan(0);
      expect(consumedB).toBeGreaterThan(0);
      expect(consumedA + consumedB).toBeGreaterThanOrEqual(messages.length);
    } finally {
      await a.stop();
      await b.stop();
      fs.rmSync(a.dataDir, { recursive: true, force: true });
      fs.rmSync(b.dataDir, { recursive: true, force: true });
      await dropSchema(schema);
    }
  });
});
