import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Pool as PgPool } from 'pg';
import { type DynamicModule, Inject, Injectable, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LoggerModule, PinoLogger } from 'nestjs-pino';
import {
  EVENT_STORE,
  type EventStore,
  type KurrentDbEventStore,
  type PostgresEventStore,
  SqliteEventStore,
  createEventStore,
} from '@metering/event-store';
import { APP_CONFIG, type AppConfig } from './config';
import { CatalogService } from './catalog/catalog.service';
import { CLOCK, type Clock, IDS, type IdGenerator, systemClock, systemIds } from './infra/clock';
import { IngestService } from './ingest/ingest.service';
import { SpaceRepository } from './ingest/space-repository';
import { BALANCE_READ_MODEL, type BalanceReadModel } from './projection/balance-read-model';
import { PostgresBalanceReadModel } from './projection/postgres-balance-read-model';
import { Projector } from './projection/projector';
import { SqliteBalanceReadModel } from './projection/sqlite-balance-read-model';
import { ResetScheduler } from './scheduler/reset-scheduler';
import { HealthController, KAFKA_STATS, SpacesController } from './http/spaces.controller';
import { AdminController } from './admin/admin.controller';
import { type Messaging, createKafkaJsMessaging } from '@metering/messaging';
import { DeadLetterRecorder } from './kafka/dead-letters';
import { KAFKA_INGRESS, KafkaIngress } from './kafka/kafka-ingress';
import { KafkaIngest } from './kafka/kafka-ingest';
import { OutboundRelay } from './kafka/outbound-relay';

/** The Kafka side of the service, present when KAFKA_BROKERS is set. */
export interface KafkaStats {
  consumed: number;
  appended: number;
  deadLettered: number;
  duplicates: number;
  relayed: number;
}

export class KafkaRuntime {
  constructor(
    /** Counts since start, shown by /health/ready. */
    readonly stats: KafkaStats,
    readonly messaging: Messaging,
    readonly ingest: KafkaIngest,
    readonly relay: OutboundRelay,
    readonly ingress: KafkaIngress,
    private readonly closeProducers: () => Promise<void>,
  ) {}

  async close(): Promise<void> {
    await this.closeProducers();
  }
}
export const KAFKA_RUNTIME = Symbol('KAFKA_RUNTIME');

export interface AppOverrides {
  clock?: Clock;
  ids?: IdGenerator;
}

/**
 * Opens the configured store and read model, ready to use (PostgreSQL migrations applied).
 *  - sqlite: both in one file (DATA_DIR/metering.db);
 *  - postgres: the store and the read model in the same database and schema (DATABASE_URL, PG_SCHEMA),
 *    on one pool;
 *  - kurrentdb: the store in KurrentDB (KURRENTDB_URL); the read model in PostgreSQL when DATABASE_URL
 *    is set, else in SQLite at DATA_DIR/read-model.db.
 * A failure names the variable and the host it tried, and closes whatever was already opened.
 */
export async function openStorage(config: AppConfig): Promise<{ store: EventStore; readModel: BalanceReadModel }> {
  /** Host(s), port and (PostgreSQL) database of a connection string, never its credentials. */
  const hostOf = (url: string): string => {
    const m = /^[a-z+]+:\/\/(?:[^@/?]*@)?([^/?]*)(\/[^?]*)?/i.exec(url);
    if (!m || !m[1]) return '(host not given)';
    const pg = /^postgres/i.test(url);
    const host = pg && !/:\d+$/.test(m[1]) ? `${m[1]}:5432` : m[1];
    return pg ? `${host}${m[2] ?? ''}` : host;
  };
  /** The most telling messages of an error and its causes (drivers wrap the socket error). */
  const reason = (err: unknown): string => {
    const parts: string[] = [];
    let e = err as { message?: unknown; code?: unknown; cause?: unknown; errors?: unknown } | null | undefined;
    for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++, e = e.cause as typeof e) {
      let m = typeof e.message === 'string' ? e.message.replace(/^(postgres|kurrentdb) unavailable: /, '') : '';
      if (!m && Array.isArray(e.errors)) m = e.errors.map((x: { message?: string }) => x?.message).filter(Boolean).join('; ');
      const code = typeof e.code === 'string' ? e.code : '';
      if (code && !m.includes(code)) m = m ? `${m} [${code}]` : code;
      if (!m || parts.some((x) => x.includes(m))) continue;
      const covered = parts.findIndex((x) => m.includes(x));
      if (covered >= 0) parts[covered] = m;
      else parts.push(m);
    }
    const text = parts.join(': ') || String(err);
    // The KurrentDB client says only "UnavailableError" when it cannot connect.
    return /^UnavailableError(: UnavailableError)*$/.test(text) ? 'server unavailable (not listening, unknown host or TLS mismatch)' : text;
  };
  const startupError = (what: string, err: unknown): Error => {
    const out = new Error(`${what}: ${reason(err)}`, { cause: err });
    // main.ts prints the stack: keep it to the sentence (the cause keeps the original).
    out.stack = `${out.name}: ${out.message}`;
    return out;
  };
  const openPostgresReadModel = async (pool: PgPool | undefined, url: string): Promise<BalanceReadModel> => {
    const readModel = new PostgresBalanceReadModel({ pool, url, schema: config.postgresSchema });
    try {
      await readModel.init();
      return readModel;
    } catch (err) {
      await readModel.close().catch(() => undefined);
      throw startupError(
        `balance read model: cannot open or migrate its tables in PostgreSQL at ${hostOf(url)} (DATABASE_URL, schema "${config.postgresSchema}")`,
        err,
      );
    }
  };

  switch (config.eventStore) {
    case 'sqlite': {
      fs.mkdirSync(config.dataDir, { recursive: true });
      const store = new SqliteEventStore(config.sqliteFile, { synchronous: config.sqliteSynchronous });
      const readModel = new SqliteBalanceReadModel(store.db);
      await readModel.init();
      return { store, readModel };
    }
    case 'postgres': {
      const url = config.postgresUrl as string; // loadConfig requires it for postgres
      let store: PostgresEventStore;
      try {
        store = await createEventStore({ kind: 'postgres', url, schema: config.postgresSchema });
      } catch (err) {
        throw startupError(
          `EVENT_STORE=postgres: cannot open the event store in PostgreSQL at ${hostOf(url)} (DATABASE_URL, schema "${config.postgresSchema}")`,
          err,
        );
      }
      try {
        return { store, readModel: await openPostgresReadModel(store.pool, url) };
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
    }
    case 'kurrentdb': {
      const url = config.kurrentdbUrl as string; // loadConfig requires it for kurrentdb
      let store: KurrentDbEventStore;
      try {
        store = await createEventStore({ kind: 'kurrentdb', url });
        // The client connects lazily: probe now so an unreachable server fails the start, clearly.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          store.headPosition().finally(() => clearTimeout(timer)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
          }),
        ]).catch(async (err) => {
          await store.close().catch(() => undefined);
          throw err;
        });
      } catch (err) {
        throw startupError(`EVENT_STORE=kurrentdb: cannot reach KurrentDB at ${hostOf(url)} (KURRENTDB_URL)`, err);
      }
      try {
        if (config.postgresUrl) return { store, readModel: await openPostgresReadModel(undefined, config.postgresUrl) };
        fs.mkdirSync(config.dataDir, { recursive: true });
        const file = path.join(config.dataDir, 'read-model.db');
        let db: Database.Database;
        try {
          db = new Database(file);
          db.pragma('journal_mode = WAL');
          db.pragma(`synchronous = ${config.sqliteSynchronous}`);
          db.pragma('busy_timeout = 5000');
        } catch (err) {
          throw startupError(`balance read model: cannot open SQLite file ${file} (DATA_DIR)`, err);
        }
        const readModel = new SqliteBalanceReadModel(db, true);
        await readModel.init();
        return { store, readModel };
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
    }
    default: {
      const kind: never = config.eventStore;
      throw new Error(`EVENT_STORE=${String(kind)}: unknown event store`);
    }
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
    @Inject(KAFKA_RUNTIME) private readonly kafka: KafkaRuntime | null,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.logger.setContext('lifecycle');
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.catalog.init();
    await this.projector.start();
    this.logger.info({ checkpoint: this.projector.checkpoint.toString() }, 'balance projection caught up');
    this.scheduler.start();
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
      await this.kafka.relay.start();
      await this.kafka.ingest.start((err) => {
        this.logger.fatal({ err }, 'Kafka consumer stopped for good; exiting so the supervisor restarts the service');
        process.exit(1);
      });
      this.logger.info({ brokers: k.connection.brokers, groupId: k.groupId, topics: this.kafka.ingest.topics }, 'consuming from Kafka');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.kafka?.ingest.stop();
    await this.kafka?.relay.stop();
    await this.kafka?.close();
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
      controllers: [SpacesController, HealthController, AdminController],
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
        {
          provide: KAFKA_RUNTIME,
          inject: [IngestService, PinoLogger],
          useFactory: (ingest: IngestService, logger: PinoLogger) => {
            const k = config.kafka;
            if (!k) return null;
            const messaging = createKafkaJsMessaging(k.connection, {
              logger: (r) => logger[r.level === 'debug' ? 'debug' : r.level]({ source: r.source, ...r.fields }, r.message),
            });
            const producer = messaging.producer();
            const relayProducer = messaging.producer();
            const deadLetters = new DeadLetterRecorder(storage.store, ids, () => clock.now());
            const stats: KafkaStats = { consumed: 0, appended: 0, deadLettered: 0, duplicates: 0, relayed: 0 };
            return new KafkaRuntime(
              stats,
              messaging,
              new KafkaIngest(messaging, k, ingest, deadLetters, logger, {
                consumed: (_t, n) => (stats.consumed += n),
                appended: (_t, n) => (stats.appended += n),
                rejected: (_t, n) => (stats.deadLettered += n),
                duplicates: (n) => (stats.duplicates += n),
              }),
              new OutboundRelay(storage.store, storage.readModel, relayProducer, k, logger, (_t, n) => (stats.relayed += n)),
              new KafkaIngress(producer, k),
              async () => {
                await producer.close();
                await relayProducer.close();
              },
            );
          },
        },
        {
          provide: KAFKA_STATS,
          inject: [KAFKA_RUNTIME],
          useFactory: (runtime: KafkaRuntime | null) => runtime?.stats ?? null,
        },
        {
          provide: KAFKA_INGRESS,
          inject: [KAFKA_RUNTIME],
          useFactory: (runtime: KafkaRuntime | null) => runtime?.ingress ?? null,
        },
        Lifecycle,
      ],
    };
  }
}
