/**
 * Ingest: deciding inbound events per Space and appending them (the HTTP API, the Kafka consumer
 * and the scheduler all go through IngestService). The cache of Space states lives here.
 */
import { Module } from '@nestjs/common';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { CatalogService } from '../catalog/catalog.service';
import { type AppConfig } from '../config';
import { type Clock, type IdGenerator } from '../infra/clock';
import { type Metrics } from '../observability/metrics';
import { IngestService } from './ingest.service';
import { SpaceRepository } from './space-repository';
import { APP_CONFIG, CLOCK, IDS, METRICS } from '../core/tokens';

@Module({
  providers: [
    {
      provide: SpaceRepository,
      inject: [EVENT_STORE, APP_CONFIG, METRICS],
      useFactory: (store: EventStore, config: AppConfig, metrics: Metrics) =>
        new SpaceRepository(store, {
          correctionWindowMs: config.correctionWindowMs,
          maxCached: config.spaceCacheSize,
          maxCachedBytes: config.spaceCacheBytes,
          usesKeptMax: config.spaceUsesKept,
          onLoad: (l) => {
            metrics.coldLoadEvents.observe({ snapshot: l.fromSnapshot ? 'yes' : 'no' }, l.eventsRead);
            metrics.coldLoadSeconds.observe({ snapshot: l.fromSnapshot ? 'yes' : 'no' }, l.ms / 1000);
          },
          onOlderUses: (r) => metrics.olderUsesReadEvents.observe(r.eventsRead),
          onSnapshotError: () => metrics.snapshotErrors.inc(),
        }),
    },
    {
      provide: IngestService,
      inject: [EVENT_STORE, SpaceRepository, CatalogService, CLOCK, IDS],
      useFactory: (store: EventStore, spaces: SpaceRepository, catalog: CatalogService, clock: Clock, ids: IdGenerator) =>
        new IngestService(store, spaces, catalog, clock, ids),
    },
  ],
  exports: [IngestService],
})
export class IngestModule {}
