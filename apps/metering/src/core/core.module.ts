/**
 * What every feature shares, provided once for the whole app (global): the configuration, the
 * injected clock and id generator, the metrics registry, the event store (appends timed for
 * /metrics), the balance read model, the entitlement view (api role) and the catalog.
 */
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { EVENT_STORE } from '@metering/event-store';
import { CatalogService } from '../catalog/catalog.service';
import { type AppConfig } from '../config';
import { type Clock, type IdGenerator } from '../infra/clock';
import type { Storage } from '../infra/storage';
import { type Metrics } from '../observability/metrics';
import { type EntitlementView } from '../projection/entitlement-view';
import { APP_CONFIG, CLOCK, IDS, METRICS } from './tokens';
import { BALANCE_READ_MODEL, ENTITLEMENT_VIEW } from '../projection/tokens';

export interface CoreOptions {
  config: AppConfig;
  /** The storage the features use (already wrapped for metrics by the composition root). */
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  metrics: Metrics;
  /** The in-memory entitlement view (api role), or null. */
  view: EntitlementView | null;
}

@Global()
@Module({})
export class CoreModule {
  static forRoot({ config, storage, clock, ids, metrics, view }: CoreOptions): DynamicModule {
    const providers = [
      { provide: APP_CONFIG, useValue: config },
      { provide: CLOCK, useValue: clock },
      { provide: IDS, useValue: ids },
      { provide: METRICS, useValue: metrics },
      { provide: EVENT_STORE, useValue: storage.store },
      { provide: BALANCE_READ_MODEL, useValue: storage.readModel },
      { provide: ENTITLEMENT_VIEW, useValue: view },
      { provide: CatalogService, useFactory: () => new CatalogService(storage.store, ids, config.catalogFile) },
    ];
    return { module: CoreModule, global: true, providers, exports: providers.map((p) => p.provide) };
  }
}
