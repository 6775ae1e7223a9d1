/**
 * Helpers for the Kafka integration tests. The broker comes from the jest global setup
 * (scripts/kafka/jest-global-setup.js) through KAFKA_BROKERS; nothing here fakes Kafka.
 */
import { Kafka, logLevel } from 'kafkajs';
import {
  createKafkaJsMessaging,
  type BatchConsumer,
  type MessageProducer,
  type Messaging,
  type MessagingLogRecord,
} from '../../libs/messaging/src';

export function brokers(): string[] {
  const raw = process.env.KAFKA_BROKERS;
  if (!raw) {
    throw new Error(
      'KAFKA_BROKERS is not set: run these tests through a jest config with the Kafka global setup ' +
        '(scripts/kafka/jest-global-setup.js), or start one with `npm run kafka:local` and export its line',
    );
  }
  return raw.split(',');
}

let counter = 0;
/** Topic and group names unique per test, so tests share one broker without interfering. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export interface LogCapture {
  records: MessagingLogRecord[];
  logger: (record: MessagingLogRecord) => void;
}

export function captureLogs(): LogCapture {
  const records: MessagingLogRecord[] = [];
  return { records, logger: (record) => records.push(record) };
}

/** A Messaging on the shared broker whose logs land in `logs` (never on the console). */
export function messagingFor(logs: LogCapture = captureLogs()): Messaging {
  return createKafkaJsMessaging({ clientId: uniqueName('test'), brokers: brokers() }, { logger: logs.logger, logLevel: 'info' });
}

/** Closes what a test opened, even when it fails. */
export class Resources {
  private readonly closers: Array<() => Promise<void>> = [];

  consumer<T extends BatchConsumer>(consumer: T): T {
    this.closers.push(() => consumer.stop());
    return consumer;
  }

  producer<T extends MessageProducer>(producer: T): T {
    this.closers.push(() => producer.close());
    return producer;
  }

  async closeAll(): Promise<void> {
    const closers = this.closers.splice(0).reverse();
    await Promise.allSettled(closers.map((close) => close()));
  }
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** What the broker has: committed offset of a group and end offset, per partition. */
export async function offsets(topic: string, groupId: string): Promise<Map<number, { committed: string; end: string }>> {
  const kafka = new Kafka({ clientId: 'test-offsets', brokers: brokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    const result = new Map<number, { committed: string; end: string }>();
    for (const end of ends) {
      const c = committed.partitions.find((p) => p.partition === end.partition);
      result.set(end.partition, { committed: c ? c.offset : '-1', end: end.high });
    }
    return result;
  } finally {
    await admin.disconnect();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `body`; when it fails, the captured log lines (no debug) are appended to the error. */
export async function withLogsOnFailure(logs: LogCapture, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const lines = logs.records
      .filter((r) => r.level !== 'debug' && !/ECONNREFUSED|Failed to connect to seed broker/.test(r.message))
      .map((r) => `${r.level} ${r.source} ${r.message} ${JSON.stringify(r.fields, (_k, v: unknown) => (v instanceof Error ? `${v.name}: ${v.message}` : v)).slice(0, 300)}`);
    if (err instanceof Error) err.message += `\n--- messaging log ---\n${lines.join('\n')}`;
    throw err;
  }
}
