/**
 * @metering/client on the real broker, with the built service consuming: KafkaUsagePublisher
 * writes each event to its topic keyed by spaceId with the event-id header, in batches, from an
 * idempotent producer; publishing everything twice (an AI service retrying) counts once; the
 * NotificationConsumer gets the threshold and the period reset, typed, with the stored event's id.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaUsagePublisher, MeteringClient, type NotificationMeta, NotificationConsumer, type PeriodResetEnvelope, type ThresholdCrossedEnvelope } from '@metering/client';
import { type RunningApp, startApp } from '../support/app-process';
import { TopicCollector, type TestTopics, kafkaBrokers, kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';

jest.setTimeout(120_000);

describe('@metering/client on Kafka', () => {
  let app: RunningApp;
  let topics: TestTopics;
  let client: MeteringClient;
  let publisher: KafkaUsagePublisher;
  let consumer: NotificationConsumer;
  let inbound: TopicCollector;
  const producerConfigs: Record<string, unknown>[] = [];
  let sendBatchCalls = 0;
  const received: { event: ThresholdCrossedEnvelope | PeriodResetEnvelope; meta: NotificationMeta }[] = [];
  const messaging = testMessaging();
  const now = Date.now();

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp({ ...kafkaEnv(topics, `metering-${randomUUID().slice(0, 8)}`), SCHEDULER_INTERVAL_MS: '500' });
    client = new MeteringClient({ baseUrl: app.url });
    // A real kafkajs Kafka, with its producer's settings and requests counted.
    const kafka = new Kafka({ clientId: 'client-test', brokers: kafkaBrokers().split(','), logLevel: logLevel.ERROR });
    const counting = {
      producer: (config?: Record<string, unknown>) => {
        producerConfigs.push(config ?? {});
        const p = kafka.producer(config);
        const sendBatch = p.sendBatch.bind(p);
        p.sendBatch = (b) => {
          sendBatchCalls++;
          return sendBatch(b);
        };
        return p;
      },
      consumer: kafka.consumer.bind(kafka),
    };
    publisher = new KafkaUsagePublisher({ kafka: counting }, { topics, lingerMs: 20 });
    inbound = await new TopicCollector(messaging, topics.generationPerformed).start();
    consumer = new NotificationConsumer(
      { brokers: kafkaBrokers().split(','), clientId: 'notifications-test' },
      {
        groupId: `notifications-${randomUUID().slice(0, 8)}`,
        topics: { thresholdCrossed: topics.thresholdCrossed, periodReset: topics.periodReset },
        fromBeginning: true,
        onThresholdCrossed: (event, meta) => void received.push({ event, meta }),
        onPeriodReset: (event, meta) => void received.push({ event, meta }),
      },
    );
    await consumer.start();
  });

  afterAll(async () => {
    await consumer?.stop();
    await publisher?.disconnect();
    await inbound?.stop();
    await app?.stop();
    if (app) fs.rmSync(app.dataDir, { recursive: true, force: true });
  });

  it('publishes usage keyed by Space, in batches, idempotently; a retry of everything counts once; the 80 % threshold reaches the consumer', async () => {
    const space = `k-${randomUUID().slice(0, 8)}`;
    await publisher.changeSubscription(space, { plan: 'pro', cycle: 'monthly', effectiveAt: new Date(now - 3_600_000) });
    await until(() => client.usage(space), (u) => u.plan === 'pro', 'the subscription consumed');

    // 20 virtual_model generations (5 credits each: 100 of 125 = 80 %), sent at once, then all again.
    const gens = Array.from({ length: 20 }, (_, i) => ({
      spaceId: space, userId: 'ann', feature: 'virtual_model', medium: 'image' as const, generations: 1,
      occurredAt: new Date(now - 60_000 + i), sourceId: `job-7/${i}`,
    }));
    const ids = await Promise.all(gens.map((g) => publisher.recordGeneration(g)));
    const retried = await Promise.all(gens.map((g) => publisher.recordGeneration(g)));
    expect(retried).toEqual(ids);
    expect(new Set(ids).size).toBe(20);

    expect(producerConfigs).toEqual([expect.objectContaining({ idempotent: true, maxInFlightRequests: 1 })]);
    // 41 messages in far fewer requests (the subscription, then two bursts of 20).
    expect(sendBatchCalls).toBeLessThanOrEqual(5);

    const mine = await until(() => inbound.messages.filter((m) => m.key === space), (xs) => xs.length >= 40, 'the generations on their topic');
    for (const m of mine) {
      const value = JSON.parse(m.value!.toString());
      expect(m.headers['event-id']).toBe(value.eventId);
      expect(Object.keys(value).sort()).toEqual(['eventId', 'feature', 'generations', 'medium', 'occurredAt', 'spaceId', 'userId']);
    }
    expect(new Set(mine.map((m) => m.partition)).size).toBe(1);

    const u = await until(() => client.usage(space), (x) => x.pools.ai_image_credits.used >= 100, '100 credits used');
    await new Promise((r) => setTimeout(r, 1000)); // every second copy has had its chance to count
    expect((await client.usage(space)).pools.ai_image_credits).toMatchObject({ used: 100, limit: 125, percent: 80 });
    expect(u.plan).toBe('pro');

    const thresholds = await until(() => received.filter((r) => r.meta.key === space && r.event.type === 'ThresholdCrossed'), (xs) => xs.length >= 1, 'the threshold at the consumer');
    const t = thresholds[0];
    expect(new Set(thresholds.map((x) => x.meta.eventId)).size).toBe(1);
    expect(t.meta.eventId).toBe(t.event.id);
    expect(t.meta.topic).toBe(topics.thresholdCrossed);
    const data = (t.event as ThresholdCrossedEnvelope).data;
    expect(data).toMatchObject({ spaceId: space, pool: 'ai_image_credits', threshold: 80, used: 100, limit: 125 });
    expect(ids).toContain(data.causationId);
    const stored = (await client.events(space, { limit: 1000 })).events.find((e) => e.type === 'ThresholdCrossed')!;
    expect(stored.id).toBe(t.meta.eventId);
  });

  it('delivers a period reset to the notification consumer', async () => {
    const space = `r-${randomUUID().slice(0, 8)}`;
    // A weekly plan whose first period ends about 3 s from now: the scheduler appends the reset.
    await publisher.changeSubscription(space, { plan: 'pro', cycle: 'weekly', effectiveAt: new Date(Date.now() - 7 * 86_400_000 + 3000) });
    const resets = await until(() => received.filter((r) => r.meta.key === space && r.event.type === 'PeriodReset'), (xs) => xs.length >= 1, 'the reset at the consumer', 60_000);
    const r = resets[0].event as PeriodResetEnvelope;
    expect(r.data).toMatchObject({ spaceId: space, plan: 'pro', cycle: 'weekly', limits: { ai_image_credits: 30, ai_video_credits: 6, batch_exports: 125 } });
    expect(resets[0].meta.eventId).toBe(r.id);
  });
});
