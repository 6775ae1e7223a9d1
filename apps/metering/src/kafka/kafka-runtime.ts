/**
 * The Kafka side of the service, present when KAFKA_BROKERS is set: the consumer (ingest role), the
 * outbound relay under its lease (projector role), the ingress POST /v1/events publishes through,
 * and the counts /health/ready shows. Built by a plain factory (`createKafkaRuntime`) that the Kafka
 * module calls.
 */
import type { PinoLogger } from 'nestjs-pino';
import { type Messaging, createKafkaJsMessaging } from '@metering/messaging';
import type { EventStore } from '@metering/event-store';
import type { AppConfig } from '../config';
import type { Clock, IdGenerator } from '../infra/clock';
import { type Lease, LocalLease, PostgresAdvisoryLease } from '../infra/lease';
import type { IngestService } from '../ingest/ingest.service';
import { type Metrics, cachedProbe } from '../observability/metrics';
import type { PositionStore } from '../projection/balance-read-model';
import { DeadLetterRecorder } from './dead-letters';
import { KafkaIngest } from './kafka-ingest';
import { KafkaIngress } from './kafka-ingress';
import { inboundTypeOfTopic } from './kafka-settings';
import { OutboundRelay, RELAY_CHECKPOINT, RELAYED_TYPES } from './outbound-relay';

/** Counts since start, shown by /health/ready. */
export interface KafkaStats {
  consumed: number;
  appended: number;
  deadLettered: number;
  duplicates: number;
  relayed: number;
}

export class KafkaRuntime {
  constructor(
    readonly stats: KafkaStats,
    readonly messaging: Messaging,
    readonly ingest: KafkaIngest,
    readonly relay: OutboundRelay,
    readonly ingress: KafkaIngress,
    private readonly closeProducers: () => Promise<void>,
    /** Only its holder runs the relay (several instances on one PostgreSQL database). */
    readonly relayLease: Lease,
  ) {}

  async close(): Promise<void> {
    await this.closeProducers();
  }
}

export interface KafkaRuntimeDeps {
  config: AppConfig;
  store: EventStore;
  readModel: PositionStore;
  ingest: IngestService;
  clock: Clock;
  ids: IdGenerator;
  metrics: Metrics;
  logger: PinoLogger;
}

/** The Kafka runtime of this configuration, or null when Kafka is off. */
export function createKafkaRuntime({ config, store, readModel, ingest, clock, ids, metrics, logger }: KafkaRuntimeDeps): KafkaRuntime | null {
  const k = config.kafka;
  if (!k) return null;
  const messaging = createKafkaJsMessaging(k.connection, {
    logger: (r) => logger[r.level === 'debug' ? 'debug' : r.level]({ source: r.source, ...r.fields }, r.message),
  });
  const producer = messaging.producer();
  const relayProducer = messaging.producer();
  const deadLetters = new DeadLetterRecorder(store, ids, () => clock.now());
  const stats: KafkaStats = { consumed: 0, appended: 0, deadLettered: 0, duplicates: 0, relayed: 0 };
  const typeOf = (topic: string) => inboundTypeOfTopic(k, topic) ?? 'unknown';
  const relay = new OutboundRelay(store, readModel, relayProducer, k, logger, (t, n) => {
    stats.relayed += n;
    metrics.relayed.inc({ type: t }, n);
  });
  if (config.roles.has('projector'))
    metrics.setRelayLag(
      cachedProbe(
        async () => {
          const at = await readModel.getPosition(RELAY_CHECKPOINT);
          return (await store.readAll({ after: at, types: RELAYED_TYPES, maxCount: 10_000 })).length;
        },
        5000,
        3000,
      ),
    );
  if (config.roles.has('ingest') && messaging.consumerLag) {
    const lagOf = messaging.consumerLag.bind(messaging);
    const topics = [k.topics.generationPerformed, k.topics.batchExported, k.topics.subscriptionChanged];
    metrics.setConsumerLag(cachedProbe(() => lagOf(k.groupId, topics), 5000, 5000));
  }
  let lease: Lease = new LocalLease();
  if (config.postgresUrl && (config.eventStore === 'postgres' || config.eventStore === 'kurrentdb'))
    lease = new PostgresAdvisoryLease(config.postgresUrl, `${config.postgresSchema}:${RELAY_CHECKPOINT}`, logger, config.relayLeaseCheckMs);
  return new KafkaRuntime(
    stats,
    messaging,
    new KafkaIngest(messaging, k, ingest, deadLetters, logger, {
      consumed: (t, n) => {
        stats.consumed += n;
        metrics.consumed.inc({ type: typeOf(t) }, n);
      },
      appended: (t, n) => {
        stats.appended += n;
        metrics.appended.inc({ type: t, source: 'kafka' }, n);
      },
      rejected: (t, n) => {
        stats.deadLettered += n;
        metrics.rejected.inc({ type: typeOf(t), source: 'kafka' }, n);
        metrics.deadLetters.inc({ topic: t }, n);
      },
      subscriptionsFirst: (outcome) => metrics.subscriptionsFirst.inc({ outcome: outcome === 'caught-up' ? 'caught_up' : 'expired' }),
      duplicates: (n) => {
        stats.duplicates += n;
        metrics.duplicates.inc({ source: 'kafka' }, n);
      },
    }),
    relay,
    new KafkaIngress(producer, k),
    async () => {
      await producer.close();
      await relayProducer.close();
    },
    lease,
  );
}
