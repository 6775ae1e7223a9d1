/**
 * The messaging port. Apps depend on these types only; the Kafka client behind them (kafkajs
 * today, see ./kafkajs) is swappable inside this folder. Delivery is at-least-once: consumers
 * must be idempotent (the metering service dedupes on event ids).
 */

/** A message to publish. Messages with the same key go to the same partition, in order. */
export interface OutgoingMessage {
  key: string;
  value: Buffer | string;
  headers?: Record<string, string>;
}

export interface MessageProducer {
  /**
   * Publishes the messages to `topic` and resolves once the broker has them durably (acks from
   * all in-sync replicas). Idempotent: an internal retry never duplicates or reorders a message.
   * Rejects when they could not be written; the caller retries (at-least-once).
   */
  send(topic: string, messages: OutgoingMessage[]): Promise<void>;
  /** Flushes nothing (send already waits) and releases the connections. Idempotent. */
  close(): Promise<void>;
}

export interface ConsumedMessage {
  /** The key as UTF-8; null when the producer sent none. */
  key: string | null;
  /** The value bytes; a tombstone (null value) arrives as an empty buffer. */
  value: Buffer;
  /** Headers as UTF-8 strings; for a header repeated under one name, the last value. */
  headers: Record<string, string>;
  /** Offset in its partition (a decimal string: offsets are 64-bit). */
  offset: string;
  /** Record timestamp, milliseconds since the epoch as a decimal string. */
  timestamp: string;
}

/** Consecutive messages of ONE partition of one topic, in offset order. */
export interface MessageBatch {
  topic: string;
  partition: number;
  messages: ConsumedMessage[];
}

/**
 * Handles one batch. Resolving means every message in it is fully handled: only then is the
 * batch's offset committed. Throwing means none of it counts: nothing is committed, and the
 * same messages (and possibly more after them) are delivered again after a backoff.
 */
export type BatchHandler = (batch: MessageBatch) => Promise<void>;

/**
 * Thrown by a handler that is not ready for its batch yet (e.g. it waits for another topic): like
 * any throw, nothing of the batch counts and it is delivered again, but after `delayMs` exactly,
 * without counting as a failure (no warning, no growing backoff, `onHandlerError` not told). The
 * other partitions go on meanwhile.
 */
export class RetryLater extends Error {
  constructor(
    readonly delayMs: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'RetryLater';
  }
}

export interface BatchConsumer {
  /**
   * Joins the consumer group, subscribes and starts handing batches to `handler`; resolves once
   * the consumer has joined the group. Call it once.
   *
   * Guarantees: a partition's batches are handled one at a time, in order; the offset of a batch
   * is committed only after its handler resolved; when the handler throws, that partition is
   * paused and re-delivered from its last committed offset after an exponential backoff, while
   * the other partitions go on; no message is skipped. Redelivery can also follow a rebalance or
   * a crash, so handlers must be idempotent.
   */
  run(handler: BatchHandler): Promise<void>;
  /**
   * Stops fetching, waits for running handlers (up to `stopTimeoutMs`; a handler still running
   * then is abandoned and its batch not committed), leaves the group and disconnects. Idempotent.
   */
  stop(): Promise<void>;
}

export interface BatchConsumerOptions {
  groupId: string;
  topics: string[];
  /**
   * Where a group with no committed offset for a partition starts: true = the earliest retained
   * message (default: nothing published before the group existed is missed), false = the end.
   */
  fromBeginning?: boolean;
  /** Partitions handled in parallel by this member (each still one batch at a time). Default 1. */
  partitionsConsumedConcurrently?: number;
  /** Group session timeout. Default 30 000 ms. */
  sessionTimeoutMs?: number;
  /** Time members get to rejoin during a rebalance. Default 60 000 ms. */
  rebalanceTimeoutMs?: number;
  /** Heartbeat period, also while a long handler runs. Default 3 000 ms. */
  heartbeatIntervalMs?: number;
  /** Longest a fetch waits for new data (also bounds the delay of a resume). Default 1 000 ms. */
  maxWaitTimeMs?: number;
  /** Upper bound of bytes fetched per partition per request. Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Backoff between redeliveries of a failing partition. */
  retry?: RetryBackoff;
  /** How long stop() waits for running handlers before abandoning them. Default 30 000 ms. */
  stopTimeoutMs?: number;
  /** Told about every handler failure (e.g. for metrics); also logged at warn. */
  onHandlerError?: (error: unknown, info: HandlerFailure) => void;
  /**
   * Told when the consumer stopped for good on an error it cannot recover from (e.g. an
   * authorization failure). Retriable errors never get here: the consumer restarts itself.
   * The usual reaction is to exit the process and let the supervisor restart it.
   */
  onFatalError?: (error: unknown) => void;
}

export interface RetryBackoff {
  /** First delay. Default 200 ms. */
  initialDelayMs?: number;
  /** Cap. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
}

export interface HandlerFailure {
  topic: string;
  partition: number;
  /** First and last offsets of the failed batch. */
  firstOffset: string;
  lastOffset: string;
  /** 1 for the first failure of this partition since its last success. */
  attempt: number;
  /** When the partition will be delivered again. */
  retryInMs: number;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  /** Topic-level configs, e.g. { 'retention.ms': '604800000' }. */
  configs?: Record<string, string>;
}

export interface EnsuredTopic {
  name: string;
  /** true when this call created it. */
  created: boolean;
  /** Partition count it has now. */
  partitions: number;
}

export interface TopicAdmin {
  /**
   * Creates the topics that do not exist (waiting for their leaders) and reports each one. An
   * existing topic is left as it is: with fewer partitions than asked, a warning is logged,
   * because adding partitions moves keys to other partitions and is an operator's decision.
   */
  ensureTopics(topics: TopicSpec[]): Promise<EnsuredTopic[]>;
}

/** How far a consumer group is behind on one partition. */
export interface PartitionLag {
  topic: string;
  partition: number;
  /** Offset of the next message the group will read (its committed offset; the low watermark when it has none). */
  committed: string;
  /** Offset the next published message will get (high watermark). */
  high: string;
  /** high - committed, never negative: messages published and not yet consumed. */
  lag: number;
}

/** One connection to the messaging system, handing out producers and consumers. */
export interface Messaging extends TopicAdmin {
  producer(): MessageProducer;
  batchConsumer(options: BatchConsumerOptions): BatchConsumer;
  /**
   * Optional (the kafkajs adapter has it). The lag of `groupId` on every partition of `topics`,
   * for metrics; a topic that does not exist yet is left out. Rejects when the cluster cannot be
   * asked; callers bound it with a timeout.
   */
  consumerLag?(groupId: string, topics: string[]): Promise<PartitionLag[]>;
}

export type MessagingLogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface MessagingLogRecord {
  level: MessagingLogLevel;
  message: string;
  /** Where it comes from: 'messaging' for this library, 'kafkajs.<namespace>' for the client. */
  source: string;
  fields: Record<string, unknown>;
}

/** Where every log line of this library and of the Kafka client goes (e.g. to pino). */
export type MessagingLogger = (record: MessagingLogRecord) => void;
