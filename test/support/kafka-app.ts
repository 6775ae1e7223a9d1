/**
 * Helpers for service-level Kafka tests: unique topic names per test, the env that points the
 * built service at them, a producer acting as the AI feature services, and a collector that reads
 * an outbound topic.
 */
import { randomUUID } from 'node:crypto';
import { type ConsumedMessage, type Messaging, createKafkaJsMessaging } from '@metering/messaging';
import type { KafkaSettings } from '../../apps/metering/src/kafka/kafka-settings';

export function kafkaBrokers(): string {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: the kafka jest project starts a broker in its global setup');
  return b;
}

/** The service's topic settings (KAFKA_TOPIC_*), with names of a test's own. */
export type TestTopics = KafkaSettings['topics'];

export function testTopics(prefix = `t${randomUUID().slice(0, 8)}`): TestTopics {
  return {
    generationPerformed: `${prefix}.usage.generation-performed.v1`,
    batchExported: `${prefix}.usage.batch-exported.v1`,
    subscriptionChanged: `${prefix}.billing.subscription-changed.v1`,
    thresholdCrossed: `${prefix}.metering.threshold-crossed.v1`,
    periodReset: `${prefix}.metering.period-reset.v1`,
    deadLetter: `${prefix}.metering.dead-letter.v1`,
  };
}

export function kafkaEnv(topics: TestTopics, groupId: string, partitions = 3, brokers = kafkaBrokers()): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers,
    KAFKA_GROUP_ID: groupId,
    KAFKA_TOPIC_PARTITIONS: String(partitions),
    KAFKA_TOPIC_GENERATION_PERFORMED: topics.generationPerformed,
    KAFKA_TOPIC_BATCH_EXPORTED: topics.batchExported,
    KAFKA_TOPIC_SUBSCRIPTION_CHANGED: topics.subscriptionChanged,
    KAFKA_TOPIC_THRESHOLD_CROSSED: topics.thresholdCrossed,
    KAFKA_TOPIC_PERIOD_RESET: topics.periodReset,
    KAFKA_TOPIC_DEAD_LETTER: topics.deadLetter,
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    LOG_LEVEL: 'warn',
  };
}

export function testMessaging(): Messaging {
  return createKafkaJsMessaging({ clientId: 'metering-test', brokers: kafkaBrokers().split(',') }, { logLevel: 'error', logger: () => undefined });
}

/** Reads a topic from the beginning into memory until stopped. */
export class TopicCollector {
  readonly messages: (ConsumedMessage & { partition: number })[] = [];
  private consumer: ReturnType<Messaging['batchConsumer']> | null = null;

  constructor(private readonly messaging: Messaging, private readonly topic: string) {}

  async start(): Promise<this> {
    this.consumer = this.messaging.batchConsumer({ groupId: `collector-${randomUUID()}`, topics: [this.topic], fromBeginning: true, maxWaitTimeMs: 200 });
    await this.consumer.run(async (batch) => {
      for (const m of batch.messages) this.messages.push({ ...m, partition: batch.partition });
    });
    return this;
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }
}

export async function until<T>(probe: () => Promise<T> | T, ok: (v: T) => boolean, what: string, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
