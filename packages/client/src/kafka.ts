/**
 * Kafka helpers over kafkajs (an optional peer dependency: install it next to this package).
 * Only the few kafkajs shapes used here are named, so the types do not need kafkajs.
 */
import { CHANNELS } from './generated/asyncapi';
import { batchExportPayload, generationPayload, subscriptionPayload } from './payloads';
import type { BatchExportInput, GenerationInput, PeriodResetEnvelope, SubscriptionInput, ThresholdCrossedEnvelope } from './types';

export interface KafkaMessageOut {
  key: string;
  value: string;
  headers: Record<string, string>;
}
export interface ProducerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  sendBatch(batch: { topicMessages: { topic: string; messages: KafkaMessageOut[] }[]; acks?: number; timeout?: number }): Promise<unknown>;
}
export interface KafkaMessageIn {
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  offset: string;
  timestamp: string;
}
export interface ConsumerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(s: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  run(r: { eachMessage: (p: { topic: string; partition: number; message: KafkaMessageIn }) => Promise<void> }): Promise<void>;
  stop(): Promise<void>;
}
export interface KafkaLike {
  producer(config?: Record<string, unknown>): ProducerLike;
  consumer(config: { groupId: string } & Record<string, unknown>): ConsumerLike;
}

/** Topic names: the AsyncAPI defaults unless the service runs with other KAFKA_TOPIC_* values. */
export type UsageTopics = { generationPerformed: string; batchExported: string; subscriptionChanged: string };
export type NotificationTopics = { thresholdCrossed: string; periodReset: string };
export const DEFAULT_TOPICS: UsageTopics & NotificationTopics = {
  generationPerformed: CHANNELS.generationPerformed,
  batchExported: CHANNELS.batchExported,
  subscriptionChanged: CHANNELS.subscriptionChanged,
  thresholdCrossed: CHANNELS.thresholdCrossed,
  periodReset: CHANNELS.periodReset,
};

/** The header that carries the eventId (inbound) or the stored event's id (outbound). */
export const EVENT_ID_HEADER = 'event-id';

/** A kafkajs Kafka, or the settings to make one (kafkajs is then loaded on first use). */
export type KafkaSource = { kafka: KafkaLike } | { brokers: string[]; clientId?: string; ssl?: boolean; sasl?: Record<string, unknown> };

function kafkaOf(source: KafkaSource): KafkaLike {
  if ('kafka' in source) return source.kafka;
  let kafkajs: { Kafka: new (c: Record<string, unknown>) => KafkaLike; logLevel: { ERROR: number } };
  try {
    kafkajs = require('kafkajs');
  } catch (err) {
    throw new Error('@metering/client: the Kafka helpers need kafkajs (an optional peer dependency): npm install kafkajs', { cause: err });
  }
  const { brokers, clientId = 'metering-client', ...rest } = source;
  return new kafkajs.Kafka({ clientId, brokers, logLevel: kafkajs.logLevel.ERROR, ...rest });
}

export interface KafkaUsagePublisherOptions {
  topics?: Partial<UsageTopics>;
  /** Messages sent in one request at most (default 500). */
  maxBatchSize?: number;
  /** How long a message may wait for others to share its request (default 5 ms). */
  lingerMs?: number;
  /** Extra kafkajs producer settings (the idempotence settings below always win). */
  producerConfig?: Record<string, unknown>;
}

type Pending = { topic: string; message: KafkaMessageOut; resolve: () => void; reject: (e: unknown) => void };

/**
 * Publishes usage to the service's inbound topics: the right topic per event, keyed by spaceId (a
 * Space's events stay in order on one partition), the eventId in the payload and the `event-id`
 * header. The producer is idempotent (acks from all in-sync replicas, one request in flight, so a
 * broker retry neither duplicates nor reorders), and messages that arrive together are sent in one
 * batch. A publish that fails may be retried as is: the eventId is stable, the service records it once.
 */
export class KafkaUsagePublisher {
  /** The settings the producer is created with. */
  static readonly PRODUCER_SETTINGS = Object.freeze({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });

  private readonly producer: ProducerLike;
  private readonly topics: UsageTopics;
  private readonly maxBatchSize: number;
  private readonly lingerMs: number;
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;
  private inFlight = new Set<Promise<void>>();

  constructor(source: KafkaSource, options: KafkaUsagePublisherOptions = {}) {
    this.producer = kafkaOf(source).producer({ ...(options.producerConfig ?? {}), ...KafkaUsagePublisher.PRODUCER_SETTINGS });
    this.topics = { ...DEFAULT_TOPICS, ...(options.topics ?? {}) };
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 500);
    this.lingerMs = Math.max(0, options.lingerMs ?? 5);
  }

  connect(): Promise<void> {
    this.connecting ??= this.producer.connect().catch((err) => {
      this.connecting = null;
      throw err;
    });
    return this.connecting;
  }

  /** Resolves with the eventId once the broker has the message. */
  async recordGeneration(input: GenerationInput): Promise<string> {
    const p = generationPayload(input);
    await this.enqueue(this.topics.generationPerformed, p.spaceId, p.eventId, p);
    return p.eventId;
  }

  async recordBatchExport(input: BatchExportInput): Promise<string> {
    const p = batchExportPayload(input);
    await this.enqueue(this.topics.batchExported, p.spaceId, p.eventId, p);
    return p.eventId;
  }

  async changeSubscription(spaceId: string, input: SubscriptionInput): Promise<string> {
    const p = subscriptionPayload(spaceId, input);
    await this.enqueue(this.topics.subscriptionChanged, p.spaceId, p.eventId, p);
    return p.eventId;
  }

  /** Sends whatever is waiting now. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length) this.track(this.sendBatch(this.queue.splice(0, this.maxBatchSize)));
    await Promise.allSettled([...this.inFlight]);
  }

  /** Flushes, then disconnects. */
  async disconnect(): Promise<void> {
    await this.flush();
    if (this.connecting) await this.producer.disconnect();
    this.connecting = null;
  }

  private enqueue(topic: string, spaceId: string, eventId: string, payload: object): Promise<void> {
    const message: KafkaMessageOut = {
      key: spaceId,
      value: JSON.stringify(payload),
      headers: { [EVENT_ID_HEADER]: eventId, 'content-type': 'application/json' },
    };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ topic, message, resolve, reject });
      if (this.queue.length >= this.maxBatchSize) this.track(this.sendBatch(this.queue.splice(0, this.maxBatchSize)));
      else this.timer ??= setTimeout(() => {
          this.timer = null;
          if (this.queue.length) this.track(this.sendBatch(this.queue.splice(0, this.maxBatchSize)));
        }, this.lingerMs);
    });
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async sendBatch(batch: Pending[]): Promise<void> {
    try {
      await this.connect();
      const byTopic = new Map<string, KafkaMessageOut[]>();
      for (const b of batch) {
        const list = byTopic.get(b.topic) ?? [];
        list.push(b.message);
        byTopic.set(b.topic, list);
      }
      await this.producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}

/** What the notification handlers get next to the payload. */
export interface NotificationMeta {
  /** The stored event's id (the `event-id` header): the same notification may arrive more than once, dedupe on it. */
  eventId: string;
  topic: string;
  partition: number;
  offset: string;
  /** The spaceId (the message key). */
  key: string;
}

export interface NotificationHandlers {
  onThresholdCrossed?: (event: ThresholdCrossedEnvelope, meta: NotificationMeta) => Promise<void> | void;
  onPeriodReset?: (event: PeriodResetEnvelope, meta: NotificationMeta) => Promise<void> | void;
  /** A message that is not a notification of these shapes (default: thrown, so the consumer stops on it). */
  onInvalid?: (error: Error, raw: { topic: string; partition: number; offset: string; value: string }) => Promise<void> | void;
}

export interface NotificationConsumerOptions extends NotificationHandlers {
  groupId: string;
  topics?: Partial<NotificationTopics>;
  fromBeginning?: boolean;
  consumerConfig?: Record<string, unknown>;
}

const headerText = (v: Buffer | string | (Buffer | string)[] | undefined): string | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? headerText(v[0]) : Buffer.isBuffer(v) ? v.toString('utf8') : v;

/**
 * A consumer for the notification service: threshold-crossed and period-reset messages, parsed and
 * typed, each with its `event-id` header for the service's own dedupe (delivery is at least once).
 * A handler that throws stops the message from being committed, so it is delivered again.
 */
export class NotificationConsumer {
  private readonly consumer: ConsumerLike;
  private readonly topics: NotificationTopics;

  constructor(source: KafkaSource, private readonly options: NotificationConsumerOptions) {
    if (!options?.groupId) throw new TypeError('NotificationConsumer: groupId is required');
    this.consumer = kafkaOf(source).consumer({ ...(options.consumerConfig ?? {}), groupId: options.groupId });
    this.topics = { thresholdCrossed: DEFAULT_TOPICS.thresholdCrossed, periodReset: DEFAULT_TOPICS.periodReset, ...(options.topics ?? {}) };
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topics.thresholdCrossed, this.topics.periodReset], fromBeginning: this.options.fromBeginning ?? false });
    await this.consumer.run({ eachMessage: (p) => this.handle(p.topic, p.partition, p.message) });
  }

  async stop(): Promise<void> {
    await this.consumer.stop().catch(() => undefined);
    await this.consumer.disconnect();
  }

  /** Parses and dispatches one message (exposed for tests and custom loops). */
  async handle(topic: string, partition: number, message: KafkaMessageIn): Promise<void> {
    const value = message.value?.toString('utf8') ?? '';
    const fail = async (why: string) => {
      const err = new Error(`not a metering notification on ${topic}[${partition}]@${message.offset}: ${why}`);
      if (this.options.onInvalid) return this.options.onInvalid(err, { topic, partition, offset: message.offset, value });
      throw err;
    };
    let body: { id?: unknown; type?: unknown; spaceId?: unknown; data?: unknown };
    try {
      body = JSON.parse(value);
    } catch {
      return fail('the value is not JSON');
    }
    const eventId = headerText(message.headers?.[EVENT_ID_HEADER]) ?? (typeof body?.id === 'string' ? body.id : undefined);
    if (!eventId) return fail('no event-id header and no id');
    if (typeof body !== 'object' || body === null || typeof body.data !== 'object' || body.data === null) return fail('no data');
    const meta: NotificationMeta = { eventId, topic, partition, offset: message.offset, key: message.key?.toString('utf8') ?? String(body.spaceId ?? '') };
    if (topic === this.topics.thresholdCrossed && body.type === 'ThresholdCrossed') return this.options.onThresholdCrossed?.(body as ThresholdCrossedEnvelope, meta);
    if (topic === this.topics.periodReset && body.type === 'PeriodReset') return this.options.onPeriodReset?.(body as PeriodResetEnvelope, meta);
    return fail(`unexpected type ${JSON.stringify(body.type)}`);
  }
}
