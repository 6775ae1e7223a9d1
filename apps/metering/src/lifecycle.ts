/**
 * The roles' lifecycle: what starts, in which order, when the app boots, and what stops when it
 * shuts down. Store identity first (checkpoints of another store are refused before anything reads
 * positions), then the catalog, the projection (caught up before the API answers), the scheduler,
 * Kafka's topics, the relay under its lease, and the consumer last.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { CatalogService } from './catalog/catalog.service';
import { type AppConfig } from './config';
import type { KafkaRuntime } from './kafka/kafka-runtime';
import { RELAY_CHECKPOINT } from './kafka/outbound-relay';
import { type BalanceReadModel } from './projection/balance-read-model';
import { type EntitlementView } from './projection/entitlement-view';
import { Projector } from './projection/projector';
import { checkStoreIdentity } from './projection/store-identity';
import { ResetScheduler } from './scheduler/reset-scheduler';
import { APP_CONFIG } from './core/tokens';
import { KAFKA_RUNTIME } from './kafka/tokens';
import { BALANCE_READ_MODEL, ENTITLEMENT_VIEW } from './projection/tokens';

@Injectable()
export class Lifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(Projector) private readonly projector: Projector,
    @Inject(ResetScheduler) private readonly scheduler: ResetScheduler,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceReadModel,
    @Inject(PinoLogger) private readonly logger: PinoLogger,
    @Inject(KAFKA_RUNTIME) private readonly kafka: KafkaRuntime | null,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ENTITLEMENT_VIEW) private readonly view: EntitlementView | null,
  ) {
    this.logger.setContext('lifecycle');
  }

  async onApplicationBootstrap(): Promise<void> {
    const roles = this.config.roles;
    this.logger.info({ roles: [...roles] }, 'roles of this instance');
    // Checkpoints of another store are refused before anything reads or writes positions.
    await checkStoreIdentity(this.store, this.readModel, [RELAY_CHECKPOINT]);
    await this.catalog.init();
    if (roles.has('projector')) {
      await this.projector.start();
      this.logger.info({ checkpoint: this.projector.checkpoint.toString() }, 'balance projection caught up');
    }
    if (roles.has('scheduler')) this.scheduler.start();
    if (this.view) {
      this.view.setLogger(this.logger);
      await this.view.start();
    }
    if (this.kafka && this.config.kafka) {
      const k = this.config.kafka;
      const t = k.topics;
      await this.kafka.messaging.ensureTopics(
        [t.generationPerformed, t.batchExported, t.subscriptionChanged, t.thresholdCrossed, t.periodReset, t.deadLetter].map((name) => ({
          name,
          partitions: k.partitions,
          replicationFactor: k.replicationFactor,
        })),
      );
      if (roles.has('projector')) {
        const relay = this.kafka.relay;
        await this.kafka.relayLease.start(
          () => relay.start(),
          () => relay.stop(),
        );
      }
      if (roles.has('ingest')) {
        await this.kafka.ingest.start((err) => {
          this.logger.fatal({ err }, 'Kafka consumer stopped for good; exiting so the supervisor restarts the service');
          process.exit(1);
        });
        this.logger.info({ brokers: k.connection.brokers, groupId: k.groupId, topics: this.kafka.ingest.topics }, 'consuming from Kafka');
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.kafka?.ingest.stop();
    await this.kafka?.relayLease.stop();
    await this.kafka?.relay.stop();
    await this.kafka?.close();
    await this.scheduler.stop();
    await this.view?.stop();
    await this.projector.stop();
    await this.readModel.close();
    await this.store.close();
  }
}
