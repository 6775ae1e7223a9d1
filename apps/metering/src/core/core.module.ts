/**
 * What every feature shares, provided once for the whole app (global): the configuration, the
 * injected clock and id generator, the metrics registry, the event store (appends timed for
 * /metrics), the balance read model and the catalog.
 */
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { EVENT_STORE } from '@metering/event-store';
import { CatalogService } from '../catalog/catalog.service';
import { APP_CONFIG, type AppConfig } from '../config';
import { CLOCK, type Clock, IDS, type IdGenerator } from '../infra/clock';
import type { Storage } from '../infra/storage';
import { METRICS, type Metrics } from '../observability/metrics';
import { BALANCE_READ_MODEL } from '../projection/balance-read-model';

export interface CoreOptions {
  config: AppConfig;
  /** The storage the features use (already wrapped for metrics by the composition root). */
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  metrics: Metrics;
}

@Global()
@Module({})
export class CoreModule {
  static forRoot({ config, storage, clock, ids, metrics }: CoreOptions): DynamicModule {
    const providers = [
      { provide: APP_CONFIG, useValue: config },
      { provide: CLOCK, useValue: clock },
      { provide: IDS, useValue: ids },
      { provide: METRICS, useValue: metrics },
      { provide: EVENT_STORE, useValue: storage.store },
      { provide: BALANCE_READ_MODEL, useValue: storage.readModel },
      { provide: CatalogService, useFactory: () => new CatalogService(storage.store, ids, config.catalogFile) },
    ];
    return { module: CoreModule, global: true, providers, exports: providers.map((p) => p.provide) };
  }
}
