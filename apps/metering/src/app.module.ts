/**
 * The composition root: one Nest module per feature, composed for this instance's roles. Storage is
 * opened outside Nest (infra/storage.ts) and passed in; the clock, ids and metrics can be injected
 * (tests). What starts and stops, in which order, is in lifecycle.ts.
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { AdminModule } from './admin/admin.module';
import type { AppConfig } from './config';
import { CoreModule } from './core/core.module';
import { HttpModule } from './http/http.module';
import { type Clock, type IdGenerator, systemClock, systemIds } from './infra/clock';
import type { Storage } from './infra/storage';
import { IngestModule } from './ingest/ingest.module';
import { KafkaModule } from './kafka/kafka.module';
import { Lifecycle } from './lifecycle';
import { pinoHttpOptions } from './observability/logging';
import { Metrics } from './observability/metrics';
import { timedEventStore } from './observability/timed-event-store';
import { createEntitlementView } from './projection/entitlement-view';
import { ProjectionModule } from './projection/projection.module';
import { SchedulerModule } from './scheduler/scheduler.module';
import { UiModule } from './ui/ui.module';

export interface AppOverrides {
  clock?: Clock;
  ids?: IdGenerator;
  /** Metrics of this app instance (default: a new registry). */
  metrics?: Metrics;
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, storage: Storage, overrides: AppOverrides = {}): DynamicModule {
    const clock = overrides.clock ?? systemClock;
    const ids = overrides.ids ?? systemIds;
    const metrics = overrides.metrics ?? new Metrics();
    // The entitlement check answers from memory, kept fresh from the store's feed (api role only).
    const view = createEntitlementView(config, storage, () => clock.now(), metrics);
    // Appends are timed for /metrics, and reported to the view (read-your-writes); everything else reaches the adapter unchanged.
    const store = timedEventStore(storage.store, metrics.appendLatency, view ? (p) => view.noteLocalAppend(p) : undefined);
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({ pinoHttp: pinoHttpOptions(config) }),
        CoreModule.forRoot({ config, storage: { store, readModel: storage.readModel }, clock, ids, metrics, view }),
        IngestModule,
        ProjectionModule,
        SchedulerModule,
        KafkaModule,
        HttpModule.forRoot(config, [KafkaModule]),
        AdminModule.forRoot(config),
        UiModule.forRoot(config),
      ],
      providers: [Lifecycle],
    };
  }
}
