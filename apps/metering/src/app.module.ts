import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Pool as PgPool } from 'pg';
import { type DynamicModule, Inject, Injectable, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
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
import { checkStoreIdentity } from './projection/store-identity';
import { SparsePositionsStore } from '@metering/event-store/testing/sparse-positions-store';
import { SqliteBalanceReadModel } from './projection/sqlite-balance-read-model';
import { ResetScheduler } from './scheduler/reset-scheduler';
import { SpacesController } from './http/spaces.controller';
import { HealthController, KAFKA_PROBE, KAFKA_STATS, type KafkaProbe } from './http/health.controller';
import { AdminController } from './admin/admin.controller';
import { SPACE_STREAM_PREFIX } from '@metering/domain';
import { type Messaging, createKafkaJsMessaging } from '@metering/messaging';
import { DeadLetterRecorder } from './kafka/dead-letters';
import { KAFKA_INGRESS, KafkaIngress } from './kafka/kafka-ingress';
import { KafkaIngest } from './kafka/kafka-ingest';
import { inboundTypeOfTopic } from './kafka/kafka-settings';
import { OutboundRelay, RELAY_CHECKPOINT, RELAYED_TYPES } from './kafka/outbound-relay';
import { type Lease, LocalLease, PostgresAdvisoryLease } from './infra/lease';
import { METRICS, Metrics, cachedProbe } from './observability/metrics';
import { pinoHttpOptions } from './observability/logging';
import { timedEventStore } from './observability/timed-event-store';
import { ApiKeyGuard } from './security/api-keys';
import { BREAKDOWN_READ_MODEL, type BreakdownReadModel } from './projection/breakdown/breakdown'; // issue-15
import { UI_CONTROLLERS, uiProviders } from './ui/ui-wiring'; // issue-15

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
    /** Only its holder runs the relay (several instances on one PostgreSQL database). */
    readonly relayLease: Lease,
  ) {}

  async close(): Promise<void> {
    await this.closeProducers();
  }
}
export const KAFKA_RUNTIME = Symbol('KAFKA_RUNTIME');

/** Events per projection transaction: larger batches write each touched row once for more events. */
const PROJECTION_BATCH = 5000;
/** metering_projection_lag_events counts at most this many events. */
const PROJECTION_LAG_CAP = 10_000;

export interface AppOverrides {
  clock?: Clock;
  ids?: IdGenerator;
  /** Metrics of this app instance (default: a new registry). */
  metrics?: Metrics;
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
      ownerOnlyFiles(config.dataDir, config.sqliteFile);
      const sqlite = new SqliteEventStore(config.sqliteFile, { synchronous: config.sqliteSynchronous });
      const readModel = new SqliteBalanceReadModel(sqlite.db);
      await readModel.init();
      // TEST ONLY hook (undocumented for operators): the same store with sparse, gapped positions,
      // so the end-to-end tests prove no code assumes dense positions (KurrentDB's are sparse).
      const store: EventStore = process.env.METERING_TEST_SPARSE_POSITIONS === '1' ? new SparsePositionsStore(sqlite) : sqlite;
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
        store = await createEventStore({ kind: 'kurrentdb', url, maxAppendBytes: config.kurrentdbMaxAppendBytes });
        // The client connects lazily: probe now so an unreachable server fails the start, clearly.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          // A read of the store's own identity stream, not of $all: an access problem on $all is
          // then reported by name (the projection's first read) instead of as "cannot reach".
          store.storeId().finally(() => clearTimeout(timer)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
          }),
        ]).catch(async (err) => {
          await store.close().catch(() => undefined);
          throw err;
        });
      } catch (err) {
        const denied = /access denied/i.test(String((err as Error)?.message));
        throw startupError(
          denied
            ? `EVENT_STORE=kurrentdb: KurrentDB at ${hostOf(url)} denied the user of KURRENTDB_URL access (see README, KurrentDB user and ACLs)`
            : `EVENT_STORE=kurrentdb: cannot reach KurrentDB at ${hostOf(url)} (KURRENTDB_URL)`,
          err,
        );
      }
      try {
        if (config.postgresUrl) return { store, readModel: await openPostgresReadModel(undefined, config.postgresUrl) };
        const file = path.join(config.dataDir, 'read-model.db');
        ownerOnlyFiles(config.dataDir, file);
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

/**
 * DATA_DIR and the SQLite files in it are the owner's alone: the directory is created 0700, the
 * database file is created (or narrowed to) 0600 before SQLite opens it, and SQLite gives its
 * -wal and -shm files the database file's mode.
 */
export function ownerOnlyFiles(dir: string, dbFile: string): void {
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) {
    if (f === dbFile && !fs.existsSync(f)) fs.closeSync(fs.openSync(f, 'a', 0o600));
    try {
      if ((fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
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
    const metrics = overrides.metrics ?? new Metrics();
    // Appends are timed for /metrics; everything else reaches the adapter unchanged.
    const store = timedEventStore(storage.store, metrics.appendLatency);
    storage = { store, readModel: storage.readModel };
    const api = config.roles.has('api');
    return {
      module: AppModule,
      imports: [LoggerModule.forRoot({ pinoHttp: pinoHttpOptions(config) }), TerminusModule.forRoot({ errorLogStyle: 'json' })],
      controllers: [HealthController, ...(api ? [SpacesController, AdminController, ...UI_CONTROLLERS /* issue-15 */] : [])],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: CLOCK, useValue: clock },
        { provide: IDS, useValue: ids },
        { provide: METRICS, useValue: metrics },
        { provide: APP_GUARD, useFactory: () => new ApiKeyGuard(config.apiKeys) },
        { provide: EVENT_STORE, useValue: storage.store },
        { provide: BALANCE_READ_MODEL, useValue: storage.readModel },
        ...uiProviders(config, storage), // issue-15: the usage breakdown read model
        {
          provide: SpaceRepository,
          useFactory: () =>
            new SpaceRepository(storage.store, {
              correctionWindowMs: config.correctionWindowMs,
              maxCached: config.spaceCacheSize,
              onLoad: (l) => {
                metrics.coldLoadEvents.observe({ snapshot: l.fromSnapshot ? 'yes' : 'no' }, l.eventsRead);
                metrics.coldLoadSeconds.observe({ snapshot: l.fromSnapshot ? 'yes' : 'no' }, l.ms / 1000);
              },
              onSnapshotError: () => metrics.snapshotErrors.inc(),
            }),
        },
        { provide: CatalogService, useFactory: () => new CatalogService(storage.store, ids, config.catalogFile) },
        {
          provide: IngestService,
          inject: [SpaceRepository, CatalogService],
          useFactory: (spaces: SpaceRepository, catalog: CatalogService) => new IngestService(storage.store, spaces, catalog, clock, ids),
        },
        {
          provide: Projector,
          inject: [PinoLogger, BREAKDOWN_READ_MODEL],
          useFactory: (logger: PinoLogger, breakdown: BreakdownReadModel) => {
            logger.setContext('projection');
            // issue-15: the breakdown read model follows the balance projection's pages.
            const projector = new Projector(storage.store, storage.readModel, logger, config.projectionPollMs, PROJECTION_BATCH, [breakdown]);
            metrics.setProjectionLag(
              cachedProbe(
                async () => {
                  // Events, not positions (KurrentDB's are sparse byte offsets): count what is left, capped.
                  const at = config.roles.has('projector') ? projector.checkpoint : await storage.readModel.checkpoint();
                  return (await storage.store.readAll({ after: at, streamPrefix: SPACE_STREAM_PREFIX, maxCount: PROJECTION_LAG_CAP })).length;
                },
                1000,
                3000,
              ),
            );
            return projector;
          },
        },
        {
          provide: ResetScheduler,
          inject: [IngestService, PinoLogger, CatalogService],
          useFactory: (ingest: IngestService, logger: PinoLogger, catalog: CatalogService) => {
            logger.setContext('scheduler');
            return new ResetScheduler(
              storage.readModel,
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
        {
          provide: KAFKA_RUNTIME,
          inject: [IngestService, PinoLogger],
          useFactory: (ingest: IngestService, logger: PinoLogger) => {
            logger.setContext('kafka');
            const k = config.kafka;
            if (!k) return null;
            const messaging = createKafkaJsMessaging(k.connection, {
              logger: (r) => logger[r.level === 'debug' ? 'debug' : r.level]({ source: r.source, ...r.fields }, r.message),
            });
            const producer = messaging.producer();
            const relayProducer = messaging.producer();
            const deadLetters = new DeadLetterRecorder(storage.store, ids, () => clock.now());
            const stats: KafkaStats = { consumed: 0, appended: 0, deadLettered: 0, duplicates: 0, relayed: 0 };
            const typeOf = (topic: string) => inboundTypeOfTopic(k, topic) ?? 'unknown';
            const relay = new OutboundRelay(storage.store, storage.readModel, relayProducer, k, logger, (t, n) => {
              stats.relayed += n;
              metrics.relayed.inc({ type: t }, n);
            });
            if (config.roles.has('projector'))
              metrics.setRelayLag(
                cachedProbe(
                  async () => {
                    const at = await storage.readModel.getPosition(RELAY_CHECKPOINT);
                    return (await storage.store.readAll({ after: at, types: RELAYED_TYPES, maxCount: 10_000 })).length;
                  },
                  5000,
                  3000,
                ),
              );
            if (config.roles.has('ingest') && messaging.consumerLag) {
              const lagOf = messaging.consumerLag.bind(messaging);
              const topics = [k.topics.generationPerformed, k.topics.batchExported, k.topics.subscriptionChanged];
              metrics.setConsumerLag(cachedProbe(() => lagOf(k.groupId, topics), 5000, 5000));
            }
            let lease: Lease = new LocalLease();
            if (config.postgresUrl && (config.eventStore === 'postgres' || config.eventStore === 'kurrentdb'))
              lease = new PostgresAdvisoryLease(config.postgresUrl, `${config.postgresSchema}:${RELAY_CHECKPOINT}`, logger, config.relayLeaseCheckMs);
            return new KafkaRuntime(
              stats,
              messaging,
              new KafkaIngest(messaging, k, ingest, deadLetters, logger, {
                consumed: (t, n) => {
                  stats.consumed += n;
                  metrics.consumed.inc({ type: typeOf(t) }, n);
                },
                appended: (t, n) => {
                  stats.appended += n;
                  metrics.appended.inc({ type: t, source: 'kafka' }, n);
                },
                rejected: (t, n) => {
                  stats.deadLettered += n;
                  metrics.rejected.inc({ type: typeOf(t), source: 'kafka' }, n);
                  metrics.deadLetters.inc({ topic: t }, n);
                },
                duplicates: (n) => {
                  stats.duplicates += n;
                  metrics.duplicates.inc({ source: 'kafka' }, n);
                },
              }),
              relay,
              new KafkaIngress(producer, k),
              async () => {
                await producer.close();
                await relayProducer.close();
              },
              lease,
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
        {
          provide: KAFKA_PROBE,
          inject: [KAFKA_RUNTIME],
          useFactory: (runtime: KafkaRuntime | null): KafkaProbe | null => {
            if (!runtime || !config.kafka) return null;
            const k = config.kafka;
            // Reaches the cluster (metadata and the group's offsets); the health check caches it for 5 s.
            return async () => {
              if (runtime.messaging.consumerLag) await runtime.messaging.consumerLag(k.groupId, [k.topics.generationPerformed]);
              return { brokers: k.connection.brokers.length };
            };
          },
        },
        Lifecycle,
      ],
    };
  }
}
