/**
 * The built service consuming from a real Kafka broker (issue 3): happy path end to end with the
 * threshold relayed to Kafka; every message produced twice changes nothing; poison messages go to
 * the dead-letter topic with their original bytes and reason while the valid messages of the same
 * partition are counted; while the store is locked nothing is lost and the consumer resumes.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Messaging } from '@metering/messaging';
import { type RunningApp, api, eventTypesOf, startApp } from '../support/app-process';
import { TopicCollector, type TestTopics, kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';

jest.setTimeout(180_000);

const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const json = (o: unknown) => JSON.stringify(o);

describe('metering on Kafka', () => {
  let app: RunningApp;
  let topics: TestTopics;
  let messaging: Messaging;
  let producer: ReturnType<Messaging['producer']>;
  const collectors: TopicCollector[] = [];

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp({ ...kafkaEnv(topics, `metering-${randomUUID().slice(0, 8)}`), SCHEDULER_INTERVAL_MS: '500' });
    messaging = testMessaging();
    producer = messaging.producer();
  });

  afterAll(async () => {
    await Promise.all(collectors.map((c) => c.stop()));
    await producer?.close();
    await app?.stop();
    if (app) fs.rmSync(app.dataDir, { recursive: true, force: true });
  });

  const usage = async (spaceId: string) => (await api(app.url, 'GET', `/v1/spaces/${spaceId}/usage`)).body;
  const streamTypes = (spaceId: string) => eventTypesOf(app.url, spaceId);

  it('consumes usage end to end, ignores every message produced twice, and relays the 80 % threshold', async () => {
    const space = `a-${randomUUID().slice(0, 8)}`;
    const sub = { eventId: randomUUID(), spaceId: space, plan: 'pro', cycle: 'monthly', effectiveAt: iso(now - 10 * 86_400_000) };
    const exportsMsgs = Array.from({ length: 8 }, (_, i) => ({
      key: space,
      value: json({ eventId: randomUUID(), spaceId: space, userId: 'u1', batchId: `b${i}`, images: 50, platform: 'web', occurredAt: iso(now) }),
    }));
    const gens = Array.from({ length: 5 }, () => ({
      key: space,
      value: json({ eventId: randomUUID(), spaceId: space, userId: 'u1', feature: 'ai_backgrounds', medium: 'image', generations: 1, occurredAt: iso(now) }),
    }));
    const thresholds = await new TopicCollector(messaging, topics.thresholdCrossed).start();
    collectors.push(thresholds);
    // Kafka orders a Space's messages within one topic only: the consumer may take a batch of
    // exports before the subscription on its own topic. Exports of a Space still on free (0 batch
    // exports) reach its 80 % and 100 % at once (space.spec.ts: 'any use of a zero limit ...'),
    // which is the product's rule, not a duplicate. So the subscription is applied first; its
    // second copy below is a duplicate wherever it lands.
    await producer.send(topics.subscriptionChanged, [{ key: space, value: json(sub) }]);
    await until(() => usage(space), (x) => x.plan === 'pro', 'the pro subscription applied');
    for (let round = 0; round < 2; round++) {
      if (round > 0) await producer.send(topics.subscriptionChanged, [{ key: space, value: json(sub) }]);
      await producer.send(topics.batchExported, exportsMsgs);
      await producer.send(topics.generationPerformed, gens);
    }
    const u = await until(() => usage(space), (x) => x.pools.batch_exports.used >= 400 && x.pools.ai_image_credits.used >= 10, 'usage 400 exports, 10 credits');
    expect(u.plan).toBe('pro');
    expect(u.pools.batch_exports).toEqual({ used: 400, limit: 500, remaining: 100, percent: 80, over: false });
    expect(u.pools.ai_image_credits.used).toBe(10);
    // Give the second copies every chance to be (wrongly) counted.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await usage(space)).pools.batch_exports.used).toBe(400);
    const types = await streamTypes(space);
    expect(types.filter((t) => t === 'SubscriptionChanged')).toHaveLength(1);
    expect(types.filter((t) => t === 'BatchExportRecorded')).toHaveLength(8);
    expect(types.filter((t) => t === 'GenerationRecorded')).toHaveLength(5);
    expect(types.filter((t) => t === 'ThresholdCrossed')).toHaveLength(1);

    const relayed = await until(() => thresholds.messages.filter((m) => m.key === space), (xs) => xs.length >= 1, 'threshold on Kafka');
    const stored = (await api(app.url, 'GET', `/v1/spaces/${space}/events?limit=1000`)).body.events.find((e: any) => e.type === 'ThresholdCrossed');
    const body = JSON.parse(relayed[0].value.toString());
    expect(relayed[0].headers['event-id']).toBe(stored.id);
    expect(body).toMatchObject({ id: stored.id, type: 'ThresholdCrossed', spaceId: space, data: { pool: 'batch_exports', threshold: 80, used: 400, limit: 500 } });
    expect(new Set(relayed.map((m) => m.headers['event-id'])).size).toBe(1);
  });

  it('sends poison messages to the dead-letter topic with their bytes and reason; valid ones on the same partition count', async () => {
    const space = `p-${randomUUID().slice(0, 8)}`;
    const dlq = await new TopicCollector(messaging, topics.deadLetter).start();
    collectors.push(dlq);
    const gen = (over: Record<string, unknown> = {}) =>
      json({ eventId: randomUUID(), spaceId: space, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: iso(now), ...over });
    const poison = [
      { topic: topics.generationPerformed, value: 'not json {', expect: { field: '', rule: 'json' } },
      { topic: topics.generationPerformed, value: json({ eventId: randomUUID(), spaceId: space }), expect: { field: 'userId' } },
      { topic: topics.generationPerformed, value: gen({ feature: 'teleport' }), expect: { field: 'feature', rule: 'known_feature' } },
      { topic: topics.generationPerformed, value: gen({ generations: 0 }), expect: { field: 'generations', rule: 'min' } },
      { topic: topics.batchExported, value: json({ eventId: randomUUID(), spaceId: space, userId: 'u', batchId: 'x', images: 300, platform: 'web', occurredAt: iso(now) }), expect: { field: 'images', rule: 'per_batch_cap' } },
      { topic: topics.subscriptionChanged, value: json({ eventId: randomUUID(), spaceId: space, plan: 'ultra', cycle: 'weekly', effectiveAt: iso(now) }), expect: { field: 'cycle', rule: 'plan_cycle_exists' } },
    ];
    // Interleave: valid, poison, valid, ... on the same key (so the same partition).
    const valid = Array.from({ length: poison.length + 1 }, () => gen());
    for (let i = 0; i < valid.length; i++) {
      await producer.send(topics.generationPerformed, [{ key: space, value: valid[i] }]);
      if (poison[i]) await producer.send(poison[i].topic, [{ key: space, value: poison[i].value }]);
    }
    const u = await until(() => usage(space), (x) => x.pools.ai_image_credits.used >= valid.length, 'valid messages counted');
    expect(u.pools.ai_image_credits.used).toBe(valid.length);
    const letters = await until(() => dlq.messages.filter((m) => m.key === space), (xs) => xs.length >= poison.length, 'dead letters');
    await new Promise((r) => setTimeout(r, 1000));
    expect(dlq.messages.filter((m) => m.key === space)).toHaveLength(poison.length);
    for (const p of poison) {
      const letter = letters.find((m) => m.value.toString() === p.value);
      expect(letter).toBeDefined();
      const errors = JSON.parse(letter!.headers['dlq-errors']);
      expect(errors[0]).toMatchObject(p.expect);
      expect(letter!.headers['dlq-source-topic']).toBe(p.topic);
      expect(letter!.headers['dlq-source-offset']).toMatch(/^\d+$/);
      expect(letter!.headers['dlq-reason']).toContain(p.expect.field || '(message)');
    }
  });

  it('hostile messages (48 KB of nesting, prototype names, NUL, raw bytes) are dead-lettered with their bytes and the valid subscription behind them on the same partition is applied', async () => {
    const space = `h-${randomUUID().slice(0, 8)}`;
    const dlq = await new TopicCollector(messaging, topics.deadLetter).start();
    collectors.push(dlq);
    const sub = (over: Record<string, unknown> = {}) =>
      json({ eventId: randomUUID(), spaceId: space, plan: 'enterprise', cycle: 'monthly', effectiveAt: iso(now - 86_400_000), customLimits: { ai_image_credits: 10, ai_video_credits: 1, batch_exports: 5 }, ...over });
    const deep = sub().replace(/"customLimits":\{[^}]*\}/, `"customLimits":${'{"a":'.repeat(8000)}1${'}'.repeat(8000)}`);
    expect(deep.length).toBeGreaterThan(48_000);
    const poison = [
      { value: deep, expect: { field: 'customLimits.a', rule: 'max_depth' } },
      { value: sub().replace('{', '{"__proto__":{"plan":"free"},'), expect: { field: '__proto__', rule: 'unknown_field' } },
      { value: sub({ type: 'toString' }), expect: { field: 'type', rule: 'matches_topic' } },
      { value: sub({ effectiveAt: '1970-01-05T00:00:00Z' }), expect: { field: 'effectiveAt', rule: 'min_instant' } },
      { value: '['.repeat(20_000), expect: { field: '', rule: 'json' } },
    ];
    for (const p of poison) await producer.send(topics.subscriptionChanged, [{ key: space, value: p.value }]);
    const gen = json({ eventId: randomUUID(), spaceId: space, userId: 'a\u0000b', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: iso(now) });
    await producer.send(topics.generationPerformed, [{ key: space, value: gen }]);
    await producer.send(topics.subscriptionChanged, [{ key: space, value: sub() }]);
    const u = await until(() => usage(space), (x) => x.plan === 'enterprise', 'the valid subscription behind the poison applied');
    expect(u.pools.ai_image_credits.limit).toBe(10);
    const letters = await until(() => dlq.messages.filter((m) => m.key === space), (xs) => xs.length >= poison.length + 1, 'dead letters');
    for (const p of poison) {
      const letter = letters.find((m) => m.value.toString() === p.value);
      expect(letter).toBeDefined();
      expect(JSON.parse(letter!.headers['dlq-errors'])[0]).toMatchObject(p.expect);
    }
    const nul = letters.find((m) => m.value.toString() === gen);
    expect(JSON.parse(nul!.headers['dlq-errors'])[0]).toMatchObject({ field: 'userId', rule: 'matches' });
  });

  it('while the store is locked, consumes nothing for good, commits nothing, and resumes without loss', async () => {
    const space = `l-${randomUUID().slice(0, 8)}`;
    const lock = new Database(path.join(app.dataDir, 'metering.db'));
    lock.pragma('busy_timeout = 10000');
    lock.exec('BEGIN EXCLUSIVE');
    const msgs = Array.from({ length: 20 }, () => ({
      key: space,
      value: json({ eventId: randomUUID(), spaceId: space, userId: 'u', feature: 'ghost_mannequin', medium: 'image', generations: 1, occurredAt: iso(now) }),
    }));
    try {
      await producer.send(topics.generationPerformed, msgs);
      await new Promise((r) => setTimeout(r, 12_000));
    } finally {
      lock.exec('COMMIT');
      lock.close();
    }
    const u = await until(() => usage(space), (x) => x.pools.ai_image_credits.used >= 60, 'usage after the store came back', 90_000);
    expect(u.pools.ai_image_credits.used).toBe(60);
    expect((await streamTypes(space)).filter((t) => t === 'GenerationRecorded')).toHaveLength(20);
    expect(app.logs()).toMatch(/batch failed; nothing committed/);
  });
});
