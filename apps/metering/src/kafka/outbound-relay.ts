/**
 * The outbound relay: reads the store from its own checkpoint and publishes threshold-crossed,
 * period-reset and dead-letter events to Kafka, keyed by spaceId (dead letters by their original
 * key), each carrying the stored event's id (header `event-id`) for consumer dedupe. The
 * checkpoint moves only after the broker acknowledged: at-least-once, never a dual write.
 */
import { fromJsonData, integrationEnvelopeV1 } from '@metering/domain';
import type { EventStore, StoredEvent, Subscription } from '@metering/event-store';
import type { MessageProducer, OutgoingMessage } from '@metering/messaging';
import { DEAD_LETTER_RECORDED, type DeadLetterData } from './dead-letters';
import type { PositionStore } from '../projection/balance-read-model';
import type { KafkaSettings } from './kafka-settings';


export interface RelayLogger {
  error(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
}

export const RELAY_CHECKPOINT = 'relay:kafka';
export const RELAYED_TYPES = ['ThresholdCrossed', 'PeriodReset', DEAD_LETTER_RECORDED];

export function outboundMessage(settings: KafkaSettings, e: StoredEvent): { topic: string; message: OutgoingMessage } {
  if (e.type === DEAD_LETTER_RECORDED) {
    const d = fromJsonData<DeadLetterData>(e.data);
    return {
      topic: settings.topics.deadLetter,
      message: {
        key: d.key ?? '',
        value: Buffer.from(d.value, 'base64'),
        headers: {
          ...d.headers,
          'event-id': e.id,
          'dlq-reason': d.reason,
          'dlq-errors': JSON.stringify(d.errors),
          'dlq-source-topic': d.topic,
          'dlq-source-partition': String(d.partition),
          'dlq-source-offset': d.offset,
          'dlq-source-timestamp': d.timestamp,
          'dlq-recorded-at': d.recordedAt,
        },
      },
    };
  }
  const spaceId = String((e.data as { spaceId?: string }).spaceId ?? e.streamName.replace(/^space-/, ''));
  // The v1 contract of the topic (docs/asyncapi.yaml), mapped field by field from the domain event.
  const envelope = integrationEnvelopeV1(e, spaceId);
  if (!envelope) throw new Error(`the relay has no outbound contract for ${e.type}`);
  return {
    topic: e.type === 'ThresholdCrossed' ? settings.topics.thresholdCrossed : settings.topics.periodReset,
    message: {
      key: spaceId,
      value: JSON.stringify(envelope),
      headers: { 'event-id': e.id, 'event-type': e.type, 'content-type': 'application/json' },
    },
  };
}

function spaceIdOf(e: StoredEvent): string | undefined {
  const d = e.data as { spaceId?: unknown };
  if (typeof d.spaceId === 'string') return d.spaceId;
  return e.streamName.startsWith('space-') ? e.streamName.slice('space-'.length) : undefined;
}

export class OutboundRelay {
  private sub: Subscription | null = null;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private position = 0n;

  constructor(
    private readonly store: EventStore,
    private readonly positions: PositionStore,
    private readonly producer: MessageProducer,
    private readonly settings: KafkaSettings,
    private readonly logger: RelayLogger,
    private readonly onPublished: (type: string, n: number) => void = () => undefined,
    private readonly name = RELAY_CHECKPOINT,
  ) {}

  get checkpoint(): bigint {
    return this.position;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.position = await this.positions.getPosition(this.name);
    this.sub = this.store.subscribe({
      after: this.position,
      types: RELAYED_TYPES,
      batchSize: 500,
      handler: async (events) => {
        const byTopic = new Map<string, OutgoingMessage[]>();
        for (const e of events) {
          const { topic, message } = outboundMessage(this.settings, e);
          byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
        }
        for (const [topic, messages] of byTopic) await this.producer.send(topic, messages);
        const last = events[events.length - 1].globalPosition;
        // Forward only: a relay that lost its lease while publishing cannot move the position back.
        await this.positions.advancePosition(this.name, last);
        this.position = last;
        this.failures = 0;
        for (const e of events) this.onPublished(e.type, 1);
        // One line per published page, naming each event (capped: a catch-up page holds up to 500).
        this.logger.info(
          {
            count: events.length,
            checkpoint: last.toString(),
            events: events.slice(0, 20).map((e) => ({ eventId: e.id, spaceId: spaceIdOf(e), type: e.type })),
          },
          'relayed to Kafka',
        );
      },
      onError: (err) => {
        this.sub = null;
        this.failures++;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
        this.logger.error({ err, retryInMs: delay }, 'relay failed; it resumes from its checkpoint');
        if (!this.stopped)
          this.restartTimer = setTimeout(() => {
            this.restartTimer = null;
            this.start().catch((e) => this.logger.error({ err: e }, 'relay restart failed'));
          }, delay);
      },
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.sub?.stop();
    this.sub = null;
  }
}
