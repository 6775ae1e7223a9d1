import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { backoffDelay } from '../backoff';
import {
  type BatchConsumer,
  type BatchConsumerOptions,
  type BatchHandler,
  type ConsumedMessage,
  type HandlerFailure,
  type MessagingLogger,
  RetryLater,
} from '../port';

type State = 'idle' | 'running' | 'stopping' | 'stopped';

const DEFAULTS = {
  sessionTimeoutMs: 30_000,
  rebalanceTimeoutMs: 60_000,
  heartbeatIntervalMs: 3_000,
  maxWaitTimeMs: 1_000,
  maxBytesPerPartition: 1024 * 1024,
  stopTimeoutMs: 30_000,
};

/**
 * BatchConsumer on kafkajs' eachBatch with manual offsets (autoCommit and eachBatchAutoResolve
 * off). The invariant kept for every partition: the position kafkajs fetches from (its resolved
 * offset) is the committed offset. A batch moves both forward together, after its handler
 * resolved; a failed handler moves neither, so the partition is simply fetched again from there
 * once its backoff pause ends.
 */
export class KafkaJsBatchConsumer implements BatchConsumer {
  private readonly consumer: Consumer;
  private readonly settings: typeof DEFAULTS;
  private state: State = 'idle';
  private stopping: Promise<void> | null = null;
  /** Failures in a row per partition, reset by a success. */
  private readonly failures = new Map<string, number>();
  private readonly resumeTimers = new Map<string, NodeJS.Timeout>();
  private readonly abandoned: Promise<'abandoned'>;
  private abandon: () => void = () => undefined;
  private removeCrashListener: (() => void) | null = null;
  private handler: BatchHandler | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarting: Promise<void> | null = null;
  /** Restarts done by this class in a row (kafkajs' own are not counted), reset by a handled batch. */
  private selfRestarts = 0;

  constructor(
    kafka: Kafka,
    private readonly options: BatchConsumerOptions,
    private readonly log: MessagingLogger,
  ) {
    if (!options.groupId) throw new Error('batchConsumer: groupId is required');
    if (!options.topics || options.topics.length === 0) throw new Error('batchConsumer: at least one topic is required');
    const pick = <K extends keyof typeof DEFAULTS>(k: K): number => {
      const v = options[k];
      if (v === undefined) return DEFAULTS[k];
      if (!Number.isFinite(v) || v <= 0) throw new Error(`batchConsumer: ${k} must be a positive number`);
      return v;
    };
    this.settings = {
      sessionTimeoutMs: pick('sessionTimeoutMs'),
      rebalanceTimeoutMs: pick('rebalanceTimeoutMs'),
      heartbeatIntervalMs: pick('heartbeatIntervalMs'),
      maxWaitTimeMs: pick('maxWaitTimeMs'),
      maxBytesPerPartition: pick('maxBytesPerPartition'),
      stopTimeoutMs: pick('stopTimeoutMs'),
    };
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: this.settings.sessionTimeoutMs,
      rebalanceTimeout: this.settings.rebalanceTimeoutMs,
      heartbeatInterval: this.settings.heartbeatIntervalMs,
      maxWaitTimeInMs: this.settings.maxWaitTimeMs,
      maxBytesPerPartition: this.settings.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      // kafkajs's own restart after a crash: only while this consumer is wanted. Its crash handler
      // disconnects, asks this, then sets its restart timer; a stop() that ran during that
      // disconnect found no timer to clear, and the restart then reconnected for good (a jest run
      // that never exited, its retries against a stopped broker). retries: kafkajs's default.
      // (test/kafka/stop-during-crash.test.ts stops the consumer in that window.)
      retry: { retries: 5, restartOnFailure: async () => this.mayRestart() },
    });
    this.abandoned = new Promise((resolve) => {
      this.abandon = () => resolve('abandoned');
    });
  }

  async run(handler: BatchHandler): Promise<void> {
    if (this.state !== 'idle') throw new Error(`batchConsumer ${this.options.groupId}: run() can be called once`);
    this.state = 'running';
    this.handler = handler;
    this.removeCrashListener = this.consumer.on(this.consumer.events.CRASH, ({ payload }) => this.onCrash(payload.error, payload.restart));
    try {
      await this.startConsumer();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.state = 'stopping';
    this.stopping = (async () => {
      for (const timer of this.resumeTimers.values()) clearTimeout(timer);
      this.resumeTimers.clear();
      if (this.restartTimer) clearTimeout(this.restartTimer);
      this.restartTimer = null;
      await this.restarting; // let a restart in progress see the stop before disconnecting
      const abandonTimer = setTimeout(() => this.abandon(), this.settings.stopTimeoutMs);
      try {
        await this.consumer.disconnect();
      } finally {
        clearTimeout(abandonTimer);
        this.removeCrashListener?.();
        this.state = 'stopped';
      }
    })();
    return this.stopping;
  }

  private async startConsumer(): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    // stop() may come while this runs (a restart after a crash): never start after it
    const stillWanted = () => this.state === 'running';
    await this.consumer.connect();
    if (!stillWanted()) return;
    await this.consumer.subscribe({ topics: this.options.topics, fromBeginning: this.options.fromBeginning ?? true });
    if (!stillWanted()) return;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, Math.floor(this.options.partitionsConsumedConcurrently ?? 1)),
      eachBatch: (payload) => this.onBatch(payload, handler),
    });
  }

  /**
   * kafkajs restarts a crashed consumer itself only when the error is flagged retriable. Group
   * and connection trouble around a broker restart (e.g. UNKNOWN_MEMBER_ID during a rejoin) is
   * not always flagged so, and would leave the consumer stopped for good: restart it here, with
   * backoff. Only errors that need an operator (authorization, authentication, protocol
   * support, invalid settings) end it, through onFatalError.
   */
  private onCrash(error: unknown, kafkajsRestarts: boolean): void {
    if (kafkajsRestarts) {
      this.info('warn', 'consumer crashed; kafkajs restarts it (with a new member id: the group rebalances once the old one times out)', { error });
      return;
    }
    if (this.state !== 'running') return;
    if (isFatal(error)) {
      this.info('error', 'consumer stopped on an error it cannot recover from', { error });
      this.options.onFatalError?.(error);
      return;
    }
    this.selfRestarts += 1;
    const delay = backoffDelay(this.selfRestarts, { initialDelayMs: 300, maxDelayMs: 30_000 });
    // seen for real: "Failed to find group coordinator" right after a broker restart
    this.info('warn', `consumer crashed and kafkajs gave up on it; restarting it in ${delay} ms (restart ${this.selfRestarts} in a row)`, { error });
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state !== 'running') return;
      // a failure here crashes again (CRASH event) or throws: either way it is retried
      this.restarting = this.startConsumer()
        .catch((err: unknown) => this.onCrash(err, false))
        .finally(() => {
          this.restarting = null;
        });
    }, delay);
  }

  /** kafkajs' question after a crash it would restart from: only while this consumer is wanted. */
  private mayRestart(): boolean {
    if (this.state === 'running') return true;
    this.info('info', `kafkajs would restart the crashed consumer; not restarted: it is ${this.state}`, {});
    return false;
  }

  private async onBatch(payload: EachBatchPayload, handler: BatchHandler): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    // Not handled = not resolved: the same offsets are fetched again by whoever owns the partition.
    if (this.state !== 'running' || batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;

    const firstOffset = batch.messages[0].offset;
    const lastOffset = batch.messages[batch.messages.length - 1].offset;
    const messages = batch.messages.map(toConsumedMessage);
    const stopHeartbeats = this.heartbeatWhileRunning(payload);
    let outcome: 'done' | 'abandoned';
    try {
      const work = Promise.resolve().then(() => handler({ topic, partition, messages }));
      work.catch(() => undefined); // an abandoned handler may still fail later: not unhandled
      outcome = await Promise.race([work.then(() => 'done' as const), this.abandoned]);
    } catch (error) {
      stopHeartbeats();
      if (error instanceof RetryLater) {
        this.info('debug', `handler on ${topic}[${partition}] offsets ${firstOffset}..${lastOffset} not ready (${error.message}); redelivery in ${error.delayMs} ms`, { topic, partition });
        this.pauseFor(topic, partition, error.delayMs);
      } else this.onHandlerFailure(error, topic, partition, firstOffset, lastOffset);
      return;
    }
    stopHeartbeats();
    if (outcome === 'abandoned') {
      this.info('warn', `stop(): handler for ${topic}[${partition}] still running after ${this.settings.stopTimeoutMs} ms; abandoned, not committed`, {
        topic,
        partition,
        firstOffset,
        lastOffset,
      });
      return;
    }

    this.failures.delete(keyOf(topic, partition));
    this.selfRestarts = 0;
    payload.resolveOffset(lastOffset);
    // what kafkajs resolved for this partition (it keys partitions as strings here)
    const pending = payload
      .uncommittedOffsets()
      .topics.filter((t) => t.topic === topic)
      .flatMap((t) => t.partitions.filter((p) => Number(p.partition) === partition))
      .map((p) => ({ partition, offset: p.offset }));
    if (pending.length === 0) return;
    try {
      await payload.commitOffsetsIfNecessary({ topics: [{ topic, partitions: pending }] });
    } catch (error) {
      // Keep "fetch position = committed offset": the batch counts as not done and comes again
      // (to us or, after a rebalance, to the partition's new owner). kafkajs handles the error.
      try {
        this.consumer.seek({ topic, partition, offset: firstOffset });
      } catch {
        // the consumer is being restarted: it starts again from the committed offsets anyway
      }
      this.info('warn', `committing ${topic}[${partition}] up to ${lastOffset} failed; the batch will be delivered again`, {
        topic,
        partition,
        firstOffset,
        lastOffset,
        error,
      });
      throw error;
    }
  }

  private onHandlerFailure(error: unknown, topic: string, partition: number, firstOffset: string, lastOffset: string): void {
    const key = keyOf(topic, partition);
    const attempt = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, attempt);
    const retryInMs = backoffDelay(attempt, this.options.retry);
    const failure: HandlerFailure = { topic, partition, firstOffset, lastOffset, attempt, retryInMs };
    this.info('warn', `handler failed on ${topic}[${partition}] offsets ${firstOffset}..${lastOffset} (attempt ${attempt}); redelivery in ${retryInMs} ms`, {
      ...failure,
      error,
    });
    try {
      this.options.onHandlerError?.(error, failure);
    } catch (callbackError) {
      this.info('error', 'onHandlerError threw', { error: callbackError });
    }
    this.pauseFor(topic, partition, retryInMs);
  }

  /**
   * Pauses only this partition; the others go on. Nothing was resolved, so after the resume the
   * partition is fetched again from its committed offset.
   */
  private pauseFor(topic: string, partition: number, retryInMs: number): void {
    if (this.state !== 'running') return;
    const key = keyOf(topic, partition);
    this.consumer.pause([{ topic, partitions: [partition] }]);
    const previous = this.resumeTimers.get(key);
    if (previous) clearTimeout(previous);
    this.resumeTimers.set(
      key,
      setTimeout(() => {
        this.resumeTimers.delete(key);
        if (this.state === 'running') this.consumer.resume([{ topic, partitions: [partition] }]);
      }, retryInMs),
    );
  }

  /** Keeps the group session alive while a long handler runs. */
  private heartbeatWhileRunning(payload: EachBatchPayload): () => void {
    let inFlight = false;
    const timer = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      payload
        .heartbeat()
        .catch((error: unknown) => this.info('debug', 'heartbeat during a running handler failed; a rebalance may follow', { error }))
        .finally(() => {
          inFlight = false;
        });
    }, this.settings.heartbeatIntervalMs);
    return () => clearInterval(timer);
  }

  private info(level: 'error' | 'warn' | 'info' | 'debug', message: string, fields: Record<string, unknown>): void {
    this.log({ level, message, source: 'messaging', fields: { groupId: this.options.groupId, ...fields } });
  }
}

const FATAL_TYPES = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
  'UNSUPPORTED_VERSION',
  'INVALID_GROUP_ID',
  'INVALID_SESSION_TIMEOUT',
  'INCONSISTENT_GROUP_PROTOCOL',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);
const FATAL_NAMES = new Set(['KafkaJSSASLAuthenticationError', 'KafkaJSNotImplemented', 'KafkaJSServerDoesNotSupportApiKey', 'KafkaJSInvalidVersionError']);

/** An error no restart can fix: it needs an operator. Looks through kafkajs' cause chain. */
export function isFatal(error: unknown): boolean {
  for (let e = error as { type?: string; name?: string; cause?: unknown } | undefined, depth = 0; e && depth < 10; depth++) {
    if ((e.type && FATAL_TYPES.has(e.type)) || (e.name && FATAL_NAMES.has(e.name))) return true;
    e = e.cause as typeof e;
  }
  return false;
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export function toConsumedMessage(m: KafkaMessage): ConsumedMessage {
  return {
    key: m.key == null ? null : m.key.toString('utf8'),
    value: m.value ?? Buffer.alloc(0),
    headers: decodeHeaders(m.headers),
    offset: m.offset,
    timestamp: m.timestamp,
  };
}

export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, raw] of Object.entries(headers)) {
    const last = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (last === undefined || last === null) continue;
    out[name] = Buffer.isBuffer(last) ? last.toString('utf8') : String(last);
  }
  return out;
}
