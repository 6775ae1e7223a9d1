/**
 * The Kafka consumer side: one consumer group over the three inbound topics. Each batch (one
 * partition) is parsed and validated, decided and appended once per Space, bad messages are
 * recorded as dead letters, and only then does the batch resolve, so its offset is committed only
 * after everything it holds is stored. A store failure throws: nothing is committed and the
 * partition is delivered again after a backoff; redelivered events are recognised by eventId.
 */
import type { InboundEvent, Rejection } from '@metering/domain';
import { type BatchConsumer, type ConsumedMessage, type MessageBatch, type Messaging, RetryLater } from '@metering/messaging';
import type { InboundType } from '@metering/domain';
import { echoableId, parseInbound, safeField } from '../ingest/inbound.dto';
import type { IngestService } from '../ingest/ingest.service';
import type { DeadLetterData, DeadLetterRecorder } from './dead-letters';
import { type KafkaSettings, inboundTypeOfTopic } from './kafka-settings';
import { SubscriptionsFirst } from './subscriptions-first';

export interface IngestLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export interface IngestCounters {
  consumed: (topic: string, n: number) => void;
  /** A usage batch was let through by the subscriptions-first rule, and why (subscriptions-first.ts). */
  subscriptionsFirst?: (outcome: 'caught-up' | 'expired') => void;
  appended: (type: string, n: number) => void;
  rejected: (topic: string, n: number) => void;
  duplicates: (n: number) => void;
}

/** How soon a usage batch handed back for the subscription topic is delivered again. */
const SUBSCRIPTIONS_RETRY_MS = 200;

const noCounters: IngestCounters = { consumed: () => undefined, appended: () => undefined, rejected: () => undefined, duplicates: () => undefined };

export class KafkaIngest {
  private consumer: BatchConsumer | null = null;
  /** Usage waits for the subscription topic (off when the bound is 0 or the group's lag cannot be asked). */
  private readonly subscriptionsFirst: SubscriptionsFirst;

  constructor(
    private readonly messaging: Messaging,
    private readonly settings: KafkaSettings,
    private readonly ingest: IngestService,
    private readonly deadLetters: DeadLetterRecorder,
    private readonly logger: IngestLogger,
    private readonly counters: IngestCounters = noCounters,
  ) {
    const lagOf = messaging.consumerLag?.bind(messaging);
    this.subscriptionsFirst = new SubscriptionsFirst({
      maxWaitMs: lagOf ? settings.subscriptionsFirstMs : 0,
      now: () => Date.now(),
      lag: async () => {
        const lags = await lagOf!(settings.groupId, [settings.topics.subscriptionChanged]);
        return lags.reduce((sum, l) => sum + l.lag, 0);
      },
    });
  }

  get topics(): string[] {
    const t = this.settings.topics;
    return [t.generationPerformed, t.batchExported, t.subscriptionChanged];
  }

  async start(onFatal: (err: unknown) => void): Promise<void> {
    this.consumer = this.messaging.batchConsumer({
      groupId: this.settings.groupId,
      topics: this.topics,
      fromBeginning: true,
      partitionsConsumedConcurrently: Math.min(4, this.settings.partitions * 3),
      sessionTimeoutMs: this.settings.sessionTimeoutMs,
      heartbeatIntervalMs: Math.max(500, Math.floor(this.settings.sessionTimeoutMs / 10)),
      onHandlerError: (err, info) => this.logger.warn({ err, ...info }, 'batch failed; nothing committed, it will be delivered again'),
      onFatalError: onFatal,
    });
    await this.consumer.run((batch) => this.handle(batch));
  }

  /** Handles one batch of one partition. Exposed for tests. */
  async handle(batch: MessageBatch): Promise<void> {
    const type = inboundTypeOfTopic(this.settings, batch.topic);
    const dead: DeadLetterData[] = [];
    const valid: { event: InboundEvent; msg: ConsumedMessage }[] = [];
    /** What a dead letter's log line can say of the event it carried (never its whole body). */
    const ids = new Map<DeadLetterData, { spaceId?: string; eventId?: string }>();
    const idsOf = (raw: unknown): { spaceId?: string; eventId?: string } => {
      const o = (typeof raw === 'object' && raw !== null ? raw : {}) as { spaceId?: unknown; eventId?: unknown };
      return { spaceId: echoableId(o.spaceId), eventId: echoableId(o.eventId) };
    };
    const reject = (msg: ConsumedMessage, errors: Rejection[], raw?: unknown) => {
      const letter = this.deadLetters.letter(batch.topic, batch.partition, msg, errors);
      ids.set(letter, idsOf(raw));
      dead.push(letter);
    };
    // Usage is handed back (delivered again shortly) until the subscriptions produced before it are decided.
    if (type !== null && type !== 'subscription-changed') await this.subscriptionsBefore(batch);
    this.counters.consumed(batch.topic, batch.messages.length);
    for (const msg of batch.messages) {
      if (!type) {
        reject(msg, [{ field: 'topic', rule: 'known_topic', message: `topic ${batch.topic} is not an inbound topic` }]);
        continue;
      }
      // Whatever the bytes, a message ends as a valid event or a dead letter: never a thrown batch.
      let checked: { ok: true; event: InboundEvent } | { ok: false; errors: Rejection[]; raw?: unknown };
      try {
        checked = checkMessage(msg, type, batch.topic);
      } catch (err) {
        checked = { ok: false, errors: [{ field: '', rule: 'unprocessable', message: `the message could not be validated: ${safeField(String((err as Error)?.message ?? err))}` }] };
      }
      if (!checked.ok) {
        reject(msg, checked.errors, checked.raw);
        continue;
      }
      valid.push({ event: checked.event, msg });
    }
    // Throws when the store is unavailable: the batch is not committed and comes again.
    const outcomes = valid.length ? await this.ingest.ingest(valid.map((v) => v.event)) : [];
    let duplicates = 0;
    const appended = new Map<string, number>();
    outcomes.forEach((o, i) => {
      // A rejection or an eventId conflict (rule event_id_conflict): a dead letter with the original bytes.
      if (o.outcome === 'rejected' || o.outcome === 'conflict') reject(valid[i].msg, o.errors, valid[i].event);
      else if (o.outcome === 'duplicate') duplicates++;
      else for (const t of o.recorded) appended.set(t, (appended.get(t) ?? 0) + 1);
    });
    // One counter update per event type and batch, not one per event.
    for (const [t, n] of appended) this.counters.appended(t, n);
    if (dead.length) {
      await this.deadLetters.record(dead);
      this.counters.rejected(batch.topic, dead.length);
      for (const d of dead)
        this.logger.warn({ topic: d.topic, partition: d.partition, offset: d.offset, deadLetterId: d.deadLetterId, ...ids.get(d), reason: d.reason }, 'message dead-lettered');
    }
    if (duplicates) this.counters.duplicates(duplicates);
  }

  /**
   * Throws `RetryLater` while the subscription changes produced before the batch's newest message
   * are not all decided, for at most KAFKA_SUBSCRIPTIONS_FIRST_MS from the batch's first delivery.
   */
  private async subscriptionsBefore(batch: MessageBatch): Promise<void> {
    if (batch.messages.length === 0) return;
    let newest = Number.NEGATIVE_INFINITY;
    for (const m of batch.messages) {
      const t = Number(m.timestamp);
      if (t > newest) newest = t;
    }
    // No readable timestamp: +Infinity, which the check caps at the batch's arrival.
    const outcome = await this.subscriptionsFirst.check(`${batch.topic}|${batch.partition}|${batch.messages[0].offset}`, Number.isFinite(newest) ? newest : Number.POSITIVE_INFINITY);
    if (outcome === 'off') return;
    if (outcome === 'not-yet') throw new RetryLater(SUBSCRIPTIONS_RETRY_MS, 'subscription changes produced before this batch are not all decided yet');
    this.counters.subscriptionsFirst?.(outcome);
    if (outcome === 'expired')
      this.logger.warn(
        { topic: batch.topic, partition: batch.partition, firstOffset: batch.messages[0].offset, heldBackMs: this.settings.subscriptionsFirstMs },
        'the subscription topic still had lag after KAFKA_SUBSCRIPTIONS_FIRST_MS: usage decided without waiting longer',
      );
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = null;
  }
}

/** Parses and validates one consumed message: the event, or the rejections for its dead letter. */
export function checkMessage(
  msg: ConsumedMessage,
  type: InboundType,
  topic: string,
): { ok: true; event: InboundEvent } | { ok: false; errors: Rejection[]; raw?: unknown } {
  let raw: unknown;
  try {
    // JSON.parse is iterative in V8: any nesting parses; parseInbound bounds the depth it accepts.
    raw = JSON.parse(msg.value.toString('utf8'));
  } catch (err) {
    return { ok: false, errors: [{ field: '', rule: 'json', message: `the message is not JSON: ${safeField((err as Error).message)}` }] };
  }
  if (typeof raw === 'object' && raw !== null && Object.prototype.hasOwnProperty.call(raw, 'type') && (raw as { type: unknown }).type !== type)
    return { ok: false, errors: [{ field: 'type', rule: 'matches_topic', message: `type must be ${type} on ${topic} (or absent)` }], raw };
  const parsed = parseInbound(raw, type);
  if (!parsed.ok) return { ok: false, errors: parsed.errors, raw };
  if (msg.key !== null && msg.key !== '' && msg.key !== parsed.event.spaceId)
    return {
      ok: false,
      errors: [{ field: 'key', rule: 'key_is_spaceId', message: `messages are keyed by spaceId: key "${safeField(msg.key)}" differs from spaceId "${parsed.event.spaceId}"` }],
      raw,
    };
  return parsed;
}
