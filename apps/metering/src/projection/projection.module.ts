/**
 * Projection: the balance read model follows the store's global feed (Projector), and the
 * breakdown read model follows the same pages. The projection lag metric is set here.
 */
import { Module } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { SPACE_STREAM_PREFIX } from '@metering/domain';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { type AppConfig } from '../config';
import { type Metrics, cachedProbe } from '../observability/metrics';
import { type BalanceReadModel } from './balance-read-model';
import { type BreakdownReadModel } from './breakdown/breakdown';
import { openBreakdownReadModel } from './breakdown/open-breakdown';
import { Projector } from './projector';
import { APP_CONFIG, METRICS } from '../core/tokens';
import { BALANCE_READ_MODEL, BREAKDOWN_READ_MODEL } from './tokens';

/**
 * Events per projection transaction: larger batches write each touched row once for more events.
 * A group commit of a Kafka backlog holds about 6,000 events on average here (up to 20,000: 1 to
 * 4 fetches of 1 MB): a page of 10,000 takes most of them whole instead of cutting them into pages
 * of 5,000 that each write the rows of nearly every Space again. Bounded: at most this many events
 * in memory per page (20,000 was tried: pages of 11,000 on average, more garbage collection).
 */
export const PROJECTION_BATCH = 10_000;
/** metering_projection_lag_events counts at most this many events. */
const PROJECTION_LAG_CAP = 10_000;

@Module({
  providers: [
    {
      provide: BREAKDOWN_READ_MODEL,
      inject: [APP_CONFIG, EVENT_STORE, BALANCE_READ_MODEL],
      useFactory: (config: AppConfig, store: EventStore, readModel: BalanceReadModel) => openBreakdownReadModel(config, { store, readModel }),
    },
    {
      provide: Projector,
      inject: [PinoLogger, BREAKDOWN_READ_MODEL, APP_CONFIG, EVENT_STORE, BALANCE_READ_MODEL, METRICS],
      useFactory: (logger: PinoLogger, breakdown: BreakdownReadModel, config: AppConfig, store: EventStore, readModel: BalanceReadModel, metrics: Metrics) => {
        logger.setContext('projection');
        // The breakdown read model follows the balance projection's pages.
        const projector = new Projector(store, readModel, logger, config.projectionPollMs, PROJECTION_BATCH, [breakdown], config.projectionLingerMs);
        metrics.setProjectionLag(
          cachedProbe(
            async () => {
              // Events, not positions (KurrentDB's are sparse byte offsets): count what is left, capped.
              const at = config.roles.has('projector') ? projector.checkpoint : await readModel.checkpoint();
              return (await store.readAll({ after: at, streamPrefix: SPACE_STREAM_PREFIX, maxCount: PROJECTION_LAG_CAP })).length;
            },
            1000,
            3000,
          ),
        );
        return projector;
      },
    },
  ],
  exports: [Projector, BREAKDOWN_READ_MODEL],
})
export class ProjectionModule {}
