/**
 * Issue 8 item 4 with Kafka on: the built service's /metrics counts what it consumed, appended and
 * rejected (by type), the dead letters, what the relay published, and shows the consumer, projection
 * and relay lags; /health/ready checks Kafka too.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import type { Messaging } from '@metering/messaging';
import { api, startApp } from '../support/app-process';
import { kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';

jest.setTimeout(180_000);

test('metrics and readiness of a Kafka-consuming service', async () => {
  const topics = testTopics();
  const app = await startApp({ ...kafkaEnv(topics, `metrics-${randomUUID().slice(0, 8)}`, 2), LOG_LEVEL: 'info' });
  const messaging: Messaging = testMessaging();
  const producer = messaging.producer();
  try {
    const space = `m-${randomUUID().slice(0, 8)}`;
    const now = new Date().toISOString();
    await producer.send(topics.subscriptionChanged, [
      { key: space, value: JSON.stringify({ eventId: randomUUID(), spaceId: space, plan: 'pro', cycle: 'monthly', effectiveAt: new Date(Date.now() - 86_400_000).toISOString() }) },
    ]);
    await producer.send(
      topics.batchExported,
      Array.from({ length: 9 }, (_, i) => ({ key: space, value: JSON.stringify({ eventId: randomUUID(), spaceId: space, userId: 'u', batchId: `b${i}`, images: 50, platform: 'web', occurredAt: now }) })),
    );
    await producer.send(topics.generationPerformed, [{ key: space, value: 'not json' }]);

    const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    const text = await until(
      async () => (await fetch(`${app.url}/metrics`)).text(),
      (t) =>
        metric(t, /metering_events_consumed_total\{type="batch-exported"\} (\d+)/) >= 9 &&
        metric(t, /metering_dead_letters_total\{topic="[^"]+"\} (\d+)/) >= 1 &&
        metric(t, /metering_relay_published_total\{type="ThresholdCrossed"\} (\d+)/) >= 1,
      'metrics to show the consumed, dead-lettered and relayed events',
      60_000,
      300,
    );
    expect(metric(text, /metering_events_appended_total\{type="BatchExportRecorded",source="kafka"\} (\d+)/)).toBe(9);
    expect(metric(text, /metering_events_appended_total\{type="SubscriptionChanged",source="kafka"\} (\d+)/)).toBe(1);
    expect(metric(text, /metering_events_rejected_total\{type="generation-performed",source="kafka"\} (\d+)/)).toBe(1);
    expect(text).toMatch(/metering_event_store_append_duration_seconds_bucket\{le="[\d.]+",op="append",outcome="ok"\} \d+/);
    expect(text).toMatch(/^metering_projection_lag_events \d+$/m);
    expect(text).toMatch(/^metering_relay_lag_events \d+$/m);
    // The consumer lag covers every partition of the inbound topics (2 each here).
    const lagLines = text.split('\n').filter((l) => l.startsWith('metering_consumer_lag_messages{'));
    expect(lagLines.length).toBe(6);

    const ready = await api(app.url, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.info.kafka.status).toBe('up');
    expect(ready.body.kafka.consumed).toBeGreaterThanOrEqual(11);
    // The dead letter and the relay log with the ids they are about.
    expect(app.logs()).toMatch(/"relayed to Kafka"/);
    expect(app.logs()).toMatch(new RegExp(`"spaceId":"${space}"`));
  } finally {
    await producer.close();
    await app.stop();
    fs.rmSync(app.dataDir, { recursive: true, force: true });
  }
});
