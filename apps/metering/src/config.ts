/**
 * Configuration from the environment, validated at start-up. Every problem is reported at once,
 * naming the variable and the rule. Secrets only ever come from the environment.
 */
import * as path from 'node:path';
import { USES_KEPT_MAX } from '@metering/domain';
import { MessagingConfigError } from '@metering/messaging';
import { type KafkaSettings, kafkaSettingsFromEnv } from './kafka/kafka-settings';
import { type ApiKey, isLoopbackHost, parseApiKeys } from './security/api-keys';
import { secretValues } from './observability/logging';
import { DEFAULT_MAX_CACHED, DEFAULT_MAX_CACHED_BYTES } from './ingest/space-repository';
import { type UiSettings, uiSecretValues, uiSettingsFromEnv } from './ui/ui-settings'; // issue-15

export type StoreKind = 'sqlite' | 'postgres' | 'kurrentdb';

/** What one process runs (ROLES). Every role serves /health/* and /metrics. */
export type Role = 'ingest' | 'projector' | 'scheduler' | 'api';
export const ROLES: readonly Role[] = ['ingest', 'projector', 'scheduler', 'api'];

export interface AppConfig {
  port: number;
  host: string;
  dataDir: string;
  eventStore: StoreKind;
  sqliteFile: string;
  postgresUrl: string | null;
  postgresSchema: string;
  kurrentdbUrl: string | null;
  /** Byte budget of one KurrentDB append; keep it under the server's MaxAppendSize. */
  kurrentdbMaxAppendBytes: number;
  catalogFile: string | null;
  schedulerIntervalMs: number;
  projectionPollMs: number;
  /** How long the projector may wait after a large page that did not fill its page size (Projector.lingerMs); 500 by default, 0 on PostgreSQL. */
  projectionLingerMs: number;
  /** ENTITLEMENT_VIEW_MAX_SPACES: Spaces the in-memory entitlement view keeps (LRU); 0 = no view (the check reads the read model). */
  entitlementViewMaxSpaces: number;
  /** ENTITLEMENT_VIEW_POLL_MS: how often the entitlement view reads the store's feed (its freshness bound, with one read). */
  entitlementViewPollMs: number;
  logLevel: string;
  maxEventsPerRequest: number;
  /** SQLite durability: FULL syncs every commit (survives power loss); NORMAL may lose the last commits on an OS crash. */
  sqliteSynchronous: 'FULL' | 'NORMAL';
  /** null when KAFKA_BROKERS is not set (embedded mode: HTTP appends directly). */
  kafka: KafkaSettings | null;
  /** ROLES: ingest (Kafka consumer), projector (balance projection + outbound relay), scheduler (resets), api (/v1). */
  roles: ReadonlySet<Role>;
  /** API_KEYS; empty = the API is open (allowed only on a loopback HOST). */
  apiKeys: ApiKey[];
  /** MAX_BODY_BYTES: largest request body (413 beyond). */
  maxBodyBytes: number;
  /** HTTP limits against slow or hostile clients (SECURITY.md). */
  http: {
    /** HTTP_REQUEST_TIMEOUT_MS: the whole request (headers and body) must arrive within this; 408 and closed otherwise. */
    requestTimeoutMs: number;
    /** HTTP_HEADERS_TIMEOUT_MS: the headers must arrive within this (at most the request timeout). */
    headersTimeoutMs: number;
    /** HTTP_IDLE_TIMEOUT_MS: a connection that sends and receives nothing for this long is closed. */
    idleTimeoutMs: number;
    /** HTTP_KEEP_ALIVE_TIMEOUT_MS: how long an idle keep-alive connection is kept between requests. */
    keepAliveTimeoutMs: number;
    /** MAX_JSON_DEPTH: deepest nesting of a JSON body (400 beyond, before it is parsed). */
    maxJsonDepth: number;
  };
  /** RELAY_LEASE_CHECK_MS: how often a relay instance checks or tries to take the relay lease (PostgreSQL). */
  relayLeaseCheckMs: number;
  /** CORRECTION_WINDOW_DAYS: how late usage may arrive (older usage is refused, rule too_late). */
  correctionWindowMs: number;
  /** SPACE_CACHE_SIZE: at most this many Space states the ingest keeps in memory (LRU); a miss is a cold load (snapshot + tail). */
  spaceCacheSize: number;
  /** SPACE_CACHE_MB: and at most this much heap for them, in MiB (each state weighed by what it holds). */
  spaceCacheBytes: number;
  /** SPACE_USES_KEPT: at most about this many uses per Space state (the newest; the store answers for the others). */
  spaceUsesKept: number;
  /** Secret values (API keys, passwords) scrubbed from every log line. Never logged. */
  secrets: string[];
  /** issue-15: UI_LINK_SECRET, UI_LINK_TTL_SECONDS, UI_FRAME_ANCESTORS (ui/ui-settings.ts). */
  ui: UiSettings;
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AppConfig {
  const problems: string[] = [];
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}="${raw}": must be an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const str = (name: string): string | null => (env[name] === undefined || env[name] === '' ? null : (env[name] as string));

  const port = int('PORT', 3000, 0, 65535);
  const host = str('HOST') ?? '127.0.0.1';
  const dataDir = path.resolve(cwd, str('DATA_DIR') ?? 'data');
  const storeRaw = str('EVENT_STORE') ?? 'sqlite';
  let eventStore: StoreKind = 'sqlite';
  if (storeRaw === 'sqlite' || storeRaw === 'postgres' || storeRaw === 'kurrentdb') eventStore = storeRaw;
  else problems.push(`EVENT_STORE="${storeRaw}": must be one of sqlite, postgres, kurrentdb`);
  // PG_URL is the test suite's variable, never read by the service: only DATABASE_URL configures it.
  const postgresUrl = str('DATABASE_URL');
  const kurrentdbUrl = str('KURRENTDB_URL');
  const kurrentdbMaxAppendBytes = int('KURRENTDB_MAX_APPEND_BYTES', 983_040, 16_384, 67_108_864);
  if (eventStore === 'postgres' && !postgresUrl) problems.push('DATABASE_URL: required when EVENT_STORE=postgres (e.g. postgres://user@host:5432/db)');
  if (postgresUrl && !/^postgres(ql)?:\/\//.test(postgresUrl)) problems.push('DATABASE_URL: must start with postgres:// or postgresql://');
  if (eventStore === 'kurrentdb' && !kurrentdbUrl) problems.push('KURRENTDB_URL: required when EVENT_STORE=kurrentdb (e.g. kurrentdb://host:2113?tls=false)');
  if (kurrentdbUrl && !/^(kurrentdb|kurrent|esdb|kdb)(\+discover)?:\/\//.test(kurrentdbUrl))
    problems.push('KURRENTDB_URL: must be a kurrentdb:// connection string');
  const postgresSchema = str('PG_SCHEMA') ?? 'metering';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(postgresSchema)) problems.push(`PG_SCHEMA="${postgresSchema}": must be a lower-case SQL identifier`);
  const catalogFile = str('CATALOG_FILE');
  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL="${logLevel}": must be one of ${LOG_LEVELS.join(', ')}`);
  const schedulerIntervalMs = int('SCHEDULER_INTERVAL_MS', 5000, 100, 86_400_000);
  const projectionPollMs = int('PROJECTION_POLL_MS', 200, 10, 60_000);
  // On by default where the read models are a SQLite file (its projection writes each row a page
  // touches on the main thread); off on PostgreSQL, where it measured no gain (bench/flat.bench.ts).
  const projectionLingerMs = int('PROJECTION_LINGER_MS', eventStore === 'postgres' ? 0 : 500, 0, 10_000);
  const entitlementViewMaxSpaces = int('ENTITLEMENT_VIEW_MAX_SPACES', 100_000, 0, 10_000_000);
  const entitlementViewPollMs = int('ENTITLEMENT_VIEW_POLL_MS', 100, 10, 10_000);
  const maxEventsPerRequest = int('MAX_EVENTS_PER_REQUEST', 1000, 1, 10_000);
  const syncRaw = (str('SQLITE_SYNCHRONOUS') ?? 'full').toUpperCase();
  if (syncRaw !== 'FULL' && syncRaw !== 'NORMAL') problems.push(`SQLITE_SYNCHRONOUS="${env.SQLITE_SYNCHRONOUS}": must be full or normal`);
  const rolesRaw = str('ROLES');
  const roles = new Set<Role>();
  if (rolesRaw === null) ROLES.forEach((r) => roles.add(r));
  else {
    const parts = rolesRaw.split(',').map((r) => r.trim().toLowerCase());
    const unknown = parts.filter((r) => !(ROLES as readonly string[]).includes(r));
    if (unknown.length || parts.length === 0)
      problems.push(`ROLES="${rolesRaw}": a comma-separated list of ${ROLES.join(', ')} (unknown: ${unknown.map((u) => `"${u}"`).join(', ') || 'none'}); unset runs every role`);
    else parts.forEach((r) => roles.add(r as Role));
  }
  const maxBodyBytes = int('MAX_BODY_BYTES', 1_048_576, 1024, 104_857_600);
  const relayLeaseCheckMs = int('RELAY_LEASE_CHECK_MS', 2000, 100, 60_000);
  const correctionWindowDays = int('CORRECTION_WINDOW_DAYS', 35, 1, 3660);
  const spaceCacheSize = int('SPACE_CACHE_SIZE', DEFAULT_MAX_CACHED, 100, 5_000_000);
  const spaceCacheMb = int('SPACE_CACHE_MB', DEFAULT_MAX_CACHED_BYTES / 2 ** 20, 8, 65_536);
  const spaceUsesKept = int('SPACE_USES_KEPT', USES_KEPT_MAX, 2, 10_000_000);
  const requestTimeoutMs = int('HTTP_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000);
  const headersTimeoutMs = int('HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 3_600_000);
  if (headersTimeoutMs > requestTimeoutMs)
    problems.push(`HTTP_HEADERS_TIMEOUT_MS=${headersTimeoutMs}: must not exceed HTTP_REQUEST_TIMEOUT_MS=${requestTimeoutMs} (the headers are part of the request)`);
  const idleTimeoutMs = int('HTTP_IDLE_TIMEOUT_MS', 60_000, 100, 3_600_000);
  const keepAliveTimeoutMs = int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 3_600_000);
  const maxJsonDepth = int('MAX_JSON_DEPTH', 32, 4, 1000);
  const keys = parseApiKeys(str('API_KEYS'));
  problems.push(...keys.problems);
  // Without keys the /v1 API is open: allowed on a loopback HOST only (a process without the api
  // role serves nothing but /health and /metrics, which are open anyway).
  if (keys.problems.length === 0 && keys.keys.length === 0 && roles.has('api') && !isLoopbackHost(host))
    problems.push(
      `API_KEYS: required when HOST="${host}" is not a loopback address (127.0.0.1, ::1, localhost): without keys the API is open, which is allowed on localhost only`,
    );
  let kafka: KafkaSettings | null = null;
  try {
    kafka = kafkaSettingsFromEnv(env);
  } catch (err) {
    if (err instanceof MessagingConfigError) problems.push(...err.problems);
    else throw err;
  }
  const ui = uiSettingsFromEnv(env, problems); // issue-15
  if (problems.length) throw new ConfigError(problems);
  return {
    port,
    host,
    dataDir,
    eventStore,
    sqliteFile: path.join(dataDir, 'metering.db'),
    postgresUrl,
    postgresSchema,
    kurrentdbUrl,
    kurrentdbMaxAppendBytes,
    catalogFile: catalogFile ? path.resolve(cwd, catalogFile) : null,
    schedulerIntervalMs,
    projectionPollMs,
    projectionLingerMs,
    entitlementViewMaxSpaces,
    entitlementViewPollMs,
    logLevel,
    maxEventsPerRequest,
    sqliteSynchronous: syncRaw === 'NORMAL' ? 'NORMAL' : 'FULL',
    correctionWindowMs: correctionWindowDays * 86_400_000,
    spaceCacheSize,
    spaceCacheBytes: spaceCacheMb * 2 ** 20,
    spaceUsesKept,
    kafka,
    roles,
    apiKeys: keys.keys,
    maxBodyBytes,
    http: { requestTimeoutMs, headersTimeoutMs, idleTimeoutMs, keepAliveTimeoutMs, maxJsonDepth },
    relayLeaseCheckMs,
    secrets: [...secretValues(env), ...uiSecretValues(env)], // issue-15: UI_LINK_SECRET
    ui,
  };
}

