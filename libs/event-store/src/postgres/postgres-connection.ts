/**
 * The connection of the PostgreSQL adapter (see postgres-event-store.ts): a checked, quoted schema
 * name and a pool, shared by the event store and the read models that live next to it.
 */
import { Pool, PoolConfig } from 'pg';

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A schema name checked and quoted, and a pool: the caller's (shared, not owned) or a new one from
 * the URL. Shared by the event store and the read models that live next to it.
 */
export function pgConnection(
  options: { schema?: string; url?: string; pool?: Pool; poolConfig?: PoolConfig },
  who: string,
): { schema: string; quoted: string; pool: Pool; ownsPool: boolean } {
  const schema = options.schema ?? 'metering';
  if (!SCHEMA_RE.test(schema)) throw new TypeError(`schema "${schema}" must be a lower-case SQL identifier`);
  if (options.pool) return { schema, quoted: `"${schema}"`, pool: options.pool, ownsPool: false };
  if (!options.url) throw new TypeError(`${who}: url or pool is required`);
  // JIT compilation off for this pool's sessions (a startup option: set before the first query).
  // Every statement here is a short indexed read or write, but on a table without statistics (new,
  // restored, or grown since its last ANALYZE) the planner's estimates can pass jit_above_cost: the
  // cold-start read of 500 streams was then compiled on each call, about 16 ms of the server's time
  // for 1 ms of work (bench:flat on PostgreSQL, many Spaces: 5,131 -> 7,282 events/s). PGOPTIONS
  // and `poolConfig.options` come after it (they win); `options` in the URL replaces it. Behind
  // PgBouncer, list `options` in its ignore_startup_parameters (README, PostgreSQL).
  const startup = ['-c jit=off', process.env.PGOPTIONS, options.poolConfig?.options].filter(Boolean).join(' ');
  const pool = new Pool({ connectionString: options.url, connectionTimeoutMillis: 10_000, ...options.poolConfig, options: startup });
  // An idle client losing its connection must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  // Nor a checked-out one: pg removes the pool's listener while a client is checked out, and a
  // client that loses its socket between two queries (no query to fail) emits 'error', which with
  // no listener is thrown as an uncaught exception. Its next query fails instead, and its holder
  // releases it as broken.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return { schema, quoted: `"${schema}"`, pool, ownsPool: true };
}
