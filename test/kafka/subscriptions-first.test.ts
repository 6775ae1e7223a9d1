/**
 * Subscriptions first (apps/metering/src/kafka/subscriptions-first.ts), on a real broker and the
 * built service. Before the service starts, the billing topic holds a backlog of 8,000 other
 * Spaces' subscription changes and then the Space's own (pro), and only then is the Space's first
 * batch export produced on its own topic. The usage partition's one message comes in the first
 * fetch, the Space's subscription a few batches later: without the rule the export was decided on
 * no subscription (free: 0 batch exports, so 80 % and 100 % fired at once) before the pro
 * subscription (KAFKA_SUBSCRIPTIONS_FIRST_MS=0 gives exactly that). With it, the export waits until
 * the group has no lag on the billing topic, and is decided on pro: no threshold.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { type RunningApp, api, eventTypesOf, startApp } from '../support/app-process';
import { kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';

jest.setTimeout(180_000);

const json = (o: unknown) => JSON.stringify(o);
const iso = (ms: number) => new Date(ms).toISOString();

it('a usage message waits for the subscription change produced before it on the billing topic', async () => {
  const topics = testTopics();
  const messaging = testMessaging();
  const producer = messaging.producer();
  const tag = randomUUID().slice(0, 8);
  const space = `sf-${tag}`;
  const effectiveAt = iso(Date.now() - 10 * 86_400_000);
  let app: RunningApp | undefined;
  try {
    // One partition per topic: the Space's subscription is behind the whole backlog.
    await messaging.ensureTopics([topics.generationPerformed, topics.batchExported, topics.subscriptionChanged].map((name) => ({ name, partitions: 1 })));
    for (let chunk = 0; chunk < 8; chunk++)
      await producer.send(
        topics.subscriptionChanged,
        Array.from({ length: 1000 }, (_, i) => {
          const other = `other-${tag}-${chunk * 1000 + i}`;
          return { key: other, value: json({ eventId: randomUUID(), spaceId: other, plan: 'pro', cycle: 'monthly', effectiveAt }) };
        }),
      );
    await producer.send(topics.subscriptionChanged, [{ key: space, value: json({ eventId: randomUUID(), spaceId: space, plan: 'pro', cycle: 'monthly', effectiveAt }) }]);
    // Produced once the broker has the subscription: the export's timestamp is after it.
    await producer.send(topics.batchExported, [
      { key: space, value: json({ eventId: randomUUID(), spaceId: space, userId: 'u1', batchId: 'b1', images: 10, platform: 'web', occurredAt: iso(Date.now()) }) },
    ]);

    app = await startApp({ ...kafkaEnv(topics, `sf-${tag}`, 1), KAFKA_SUBSCRIPTIONS_FIRST_MS: '120000' });
    const url = app.url;
    const types = () => eventTypesOf(url, space);
    await until(types, (t) => t.includes('BatchExportRecorded'), 'the export recorded', 120_000);
    // The subscription first, then the export, decided on pro (10 of 500 images): no threshold.
    expect(await types()).toEqual(['SubscriptionChanged', 'BatchExportRecorded']);
    // The usage view reads the balance read model, which may still be projecting the backlog.
    const usage = await until(async () => (await api(url, 'GET', `/v1/spaces/${space}/usage`)).body, (u) => u.pools.batch_exports.used > 0, 'the export projected', 60_000);
    expect(usage.plan).toBe('pro');
    expect(usage.pools.batch_exports).toMatchObject({ used: 10, over: false });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/metering_kafka_subscriptions_first_total\{outcome="caught_up"\} [1-9]/);
    expect(metrics).not.toMatch(/metering_kafka_subscriptions_first_total\{outcome="expired"\}/);
  } finally {
    await producer.close();
    await app?.stop();
    if (app) fs.rmSync(app.dataDir, { recursive: true, force: true });
  }
});
