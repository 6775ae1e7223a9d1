/** The scheduler: period resets, activations and catalog allowance passes, decided through ingest. */
import { Module } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { CatalogService } from '../catalog/catalog.service';
import { type AppConfig } from '../config';
import { type Clock } from '../infra/clock';
import { IngestModule } from '../ingest/ingest.module';
import { IngestService } from '../ingest/ingest.service';
import { type Metrics } from '../observability/metrics';
import { type BalanceReadModel } from '../projection/balance-read-model';
import { ResetScheduler } from './reset-scheduler';
import { APP_CONFIG, CLOCK, METRICS } from '../core/tokens';
import { BALANCE_READ_MODEL } from '../projection/tokens';

@Module({
  imports: [IngestModule],
  providers: [
    {
      provide: ResetScheduler,
      inject: [IngestService, PinoLogger, CatalogService, APP_CONFIG, BALANCE_READ_MODEL, CLOCK, METRICS],
      useFactory: (ingest: IngestService, logger: PinoLogger, catalog: CatalogService, config: AppConfig, readModel: BalanceReadModel, clock: Clock, metrics: Metrics) => {
        logger.setContext('scheduler');
        return new ResetScheduler(
          readModel,
          ingest,
          clock,
          logger,
          config.schedulerIntervalMs,
          undefined,
          (types) => {
            for (const type of types) metrics.appended.inc({ type, source: 'scheduler' });
          },
          async () => {
            await catalog.refreshIfStale(clock.now());
            return catalog.catalog;
          },
        );
      },
    },
  ],
  exports: [ResetScheduler],
})
export class SchedulerModule {}
