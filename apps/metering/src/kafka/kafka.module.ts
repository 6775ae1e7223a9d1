/**
 * Kafka: the consumer, the outbound relay and the ingress, when KAFKA_BROKERS is set (every token
 * is null otherwise). Also answers /health/ready's ports (KAFKA_STATS, KAFKA_PROBE) and the HTTP
 * API's ingress (EVENT_INGRESS).
 */
import { Module } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { type AppConfig } from '../config';
import { type Clock, type IdGenerator } from '../infra/clock';
import { EVENT_INGRESS } from '../ingest/ingress';
import { IngestModule } from '../ingest/ingest.module';
import { IngestService } from '../ingest/ingest.service';
import { KAFKA_PROBE, KAFKA_STATS, type KafkaProbe } from '../observability/health-ports';
import { type Metrics } from '../observability/metrics';
import { type BalanceReadModel } from '../projection/balance-read-model';
import { type KafkaRuntime, createKafkaRuntime } from './kafka-runtime';
import { KAFKA_RUNTIME } from './tokens';
import { APP_CONFIG, CLOCK, IDS, METRICS } from '../core/tokens';
import { BALANCE_READ_MODEL } from '../projection/tokens';


@Module({
  imports: [IngestModule],
  providers: [
    {
      provide: KAFKA_RUNTIME,
      inject: [IngestService, PinoLogger, APP_CONFIG, EVENT_STORE, BALANCE_READ_MODEL, CLOCK, IDS, METRICS],
      useFactory: (ingest: IngestService, logger: PinoLogger, config: AppConfig, store: EventStore, readModel: BalanceReadModel, clock: Clock, ids: IdGenerator, metrics: Metrics) => {
        logger.setContext('kafka');
        return createKafkaRuntime({ config, store, readModel, ingest, clock, ids, metrics, logger });
      },
    },
    { provide: KAFKA_STATS, inject: [KAFKA_RUNTIME], useFactory: (runtime: KafkaRuntime | null) => runtime?.stats ?? null },
    { provide: EVENT_INGRESS, inject: [KAFKA_RUNTIME], useFactory: (runtime: KafkaRuntime | null) => runtime?.ingress ?? null },
    {
      provide: KAFKA_PROBE,
      inject: [KAFKA_RUNTIME, APP_CONFIG],
      useFactory: (runtime: KafkaRuntime | null, config: AppConfig): KafkaProbe | null => {
        const k = config.kafka;
        if (!runtime || !k) return null;
        // Reaches the cluster (metadata and the group's offsets); the health check caches it for 5 s.
        return async () => {
          if (runtime.messaging.consumerLag) await runtime.messaging.consumerLag(k.groupId, [k.topics.generationPerformed]);
          return { brokers: k.connection.brokers.length };
        };
      },
    },
  ],
  exports: [KAFKA_RUNTIME, KAFKA_STATS, EVENT_INGRESS, KAFKA_PROBE],
})
export class KafkaModule {}
