import * as fs from 'node:fs';
import { type DynamicModule, Inject, Injectable, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LoggerModule, PinoLogger } from 'nestjs-pino';
import { EVENT_STORE, type EventStore, SqliteEventStore } from '@metering/event-store';
import { APP_CONFIG, type AppConfig } from './config';
import { CatalogService } from './catalog/catalog.service';
import { CLOCK, type Clock, IDS, type IdGenerator, systemClock, systemIds } from './infra/clock';
import { IngestService } from './ingest/ingest.service';
import { SpaceRepository } from './ingest/space-repository';
import { BALANCE_READ_MODEL, type BalanceReadModel } from './projection/balance-read-model';
import { Projector } from './projection/projector';
import { SqliteBalanceReadModel } from './projection/sqlite-balance-read-model';
import { ResetScheduler } from './scheduler/reset-scheduler';
import { HealthController, SpacesController } from './http/spaces.controller';

export interface AppOverrides {
  clock?: Clock;
  ids?: IdGenerator;
}

/** Opens the configured store and read model. SQLite keeps both in one file (DATA_DIR/metering.db). */
export async function openStorage(config: AppConfig): Promise<{ store: EventStore; readModel: BalanceReadModel }> {
  switch (config.eventStore) {
    case 'sqlite': {
      fs.mkdirSync(config.dataDir, { recursive: true });
      const store = new SqliteEventStore(config.sqliteFile, { synchronous: config.sqliteSynchronous });
      const readModel = new SqliteBalanceReadModel(store.db);
      await readModel.init();
      return { store, readModel };
    }
    default:
      throw new Error(`EVENT_STORE=${config.eventStore} is not available in this build yet`);
  }
}

@Injectable()
class Lifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(Projector) private readonly projector: Projector,
    @Inject(ResetScheduler) private readonly scheduler: ResetScheduler,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceReadModel,
    @Inject(PinoLogger) private readonly logger: PinoLogger,
  ) {
    this.logger.setContext('lifecycle');
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.catalog.init();
    await this.projector.start();
    this.logger.info({ checkpoint: this.projector.checkpoint.toString() }, 'balance projection caught up');
    this.scheduler.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.scheduler.stop();
    await this.projector.stop();
    await this.readModel.close();
    await this.store.close();
  }
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, storage: { store: EventStore; readModel: BalanceReadModel }, overrides: AppOverrides = {}): DynamicModule {
    const clock = overrides.clock ?? systemClock;
    const ids = overrides.ids ?? systemIds;
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            level: config.logLevel,
            autoLogging: false,
            redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
          },
        }),
      ],
      controllers: [SpacesController, HealthController],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: CLOCK, useValue: clock },
        { provide: IDS, useValue: ids },
        { provide: EVENT_STORE, useValue: storage.store },
        { provide: BALANCE_READ_MODEL, useValue: storage.readModel },
        { provide: SpaceRepository, useFactory: () => new SpaceRepository(storage.store) },
        { provide: CatalogService, useFactory: () => new CatalogService(storage.store, ids, config.catalogFile) },
        {
          provide: IngestService,
          inject: [SpaceRepository, CatalogService],
          useFactory: (spaces: SpaceRepository, catalog: CatalogService) => new IngestService(storage.store, spaces, catalog, clock, ids),
        },
        {
          provide: Projector,
          inject: [PinoLogger],
          useFactory: (logger: PinoLogger) => {
            logger.setContext('projection');
            return new Projector(storage.store, storage.readModel, logger, config.projectionPollMs);
          },
        },
        {
          provide: ResetScheduler,
          inject: [IngestService, PinoLogger],
          useFactory: (ingest: IngestService, logger: PinoLogger) =>
            new ResetScheduler(storage.readModel, ingest, clock, logger, config.schedulerIntervalMs),
        },
        Lifecycle,
      ],
    };
  }
}
