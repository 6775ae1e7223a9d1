/**
 * Store configuration is validated at start-up with messages that name the variable and the rule,
 * and every problem is reported at once. Also: openStorage fails clearly when PostgreSQL cannot be
 * reached (the message names DATABASE_URL and the host, never the password).
 */
import { ConfigError, loadConfig } from '../../apps/metering/src/config';
import { openStorage } from '../../apps/metering/src/infra/storage';

/** The problems loadConfig reports for `env` (an explicit env: nothing leaks in from process.env). */
function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, '/srv/metering');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/^invalid configuration:\n {2}- /);
    return (err as ConfigError).problems;
  }
  return [];
}

describe('loadConfig: event store settings', () => {
  test('defaults to the embedded SQLite store', () => {
    const c = loadConfig({}, '/srv/metering');
    expect(c.eventStore).toBe('sqlite');
    expect(c.sqliteFile).toBe('/srv/metering/data/metering.db');
    expect(c.postgresUrl).toBeNull();
    expect(c.kurrentdbUrl).toBeNull();
  });

  test('PROJECTION_LINGER_MS: 500 where the read models are a SQLite file, 0 on PostgreSQL, either overridable, checked', () => {
    expect(loadConfig({}, '/srv/metering').projectionLingerMs).toBe(500);
    expect(loadConfig({ EVENT_STORE: 'postgres', DATABASE_URL: 'postgres://db/x' }, '/srv/metering').projectionLingerMs).toBe(0);
    expect(loadConfig({ EVENT_STORE: 'postgres', DATABASE_URL: 'postgres://db/x', PROJECTION_LINGER_MS: '250' }, '/srv/metering').projectionLingerMs).toBe(250);
    expect(loadConfig({ PROJECTION_LINGER_MS: '0' }, '/srv/metering').projectionLingerMs).toBe(0);
    expect(problems({ PROJECTION_LINGER_MS: '-1' })).toEqual([expect.stringMatching(/^PROJECTION_LINGER_MS="-1": .*0.*10000/)]);
  });

  test('an unknown EVENT_STORE names the variable, the value and the choices', () => {
    expect(problems({ EVENT_STORE: 'mysql' })).toEqual(['EVENT_STORE="mysql": must be one of sqlite, postgres, kurrentdb']);
    expect(problems({ EVENT_STORE: 'Postgres' })).toEqual(['EVENT_STORE="Postgres": must be one of sqlite, postgres, kurrentdb']);
  });

  test('postgres without DATABASE_URL says it is required and how it looks', () => {
    expect(problems({ EVENT_STORE: 'postgres' })).toEqual(['DATABASE_URL: required when EVENT_STORE=postgres (e.g. postgres://user@host:5432/db)']);
    expect(problems({ EVENT_STORE: 'postgres', DATABASE_URL: 'mysql://db/x' })).toEqual(['DATABASE_URL: must start with postgres:// or postgresql://']);
    const c = loadConfig({ EVENT_STORE: 'postgres', DATABASE_URL: 'postgresql://u:p@db:5432/metering', PG_SCHEMA: 'usage' }, '/srv/metering');
    expect(c).toMatchObject({ eventStore: 'postgres', postgresUrl: 'postgresql://u:p@db:5432/metering', postgresSchema: 'usage' });
  });

  test('kurrentdb without KURRENTDB_URL says it is required and how it looks', () => {
    expect(problems({ EVENT_STORE: 'kurrentdb' })).toEqual(['KURRENTDB_URL: required when EVENT_STORE=kurrentdb (e.g. kurrentdb://host:2113?tls=false)']);
    expect(problems({ EVENT_STORE: 'kurrentdb', KURRENTDB_URL: 'http://kdb:2113' })).toEqual(['KURRENTDB_URL: must be a kurrentdb:// connection string']);
    const c = loadConfig({ EVENT_STORE: 'kurrentdb', KURRENTDB_URL: 'kurrentdb://kdb:2113?tls=false' }, '/srv/metering');
    expect(c).toMatchObject({ eventStore: 'kurrentdb', kurrentdbUrl: 'kurrentdb://kdb:2113?tls=false', postgresUrl: null });
  });

  test.each(['abc', '70000', '-1', '80.5'])('PORT=%s names the variable and the range', (port) => {
    expect(problems({ PORT: port })).toEqual([`PORT="${port}": must be an integer from 0 to 65535`]);
  });

  test('SPACE_CACHE_SIZE: at most this many Space states kept in memory, 200,000 unless set, within its range', () => {
    expect(loadConfig({}, '/srv/metering').spaceCacheSize).toBe(200_000);
    expect(loadConfig({ SPACE_CACHE_SIZE: '50000' }, '/srv/metering').spaceCacheSize).toBe(50_000);
    expect(problems({ SPACE_CACHE_SIZE: '10' })).toEqual(['SPACE_CACHE_SIZE="10": must be an integer from 100 to 5000000']);
    expect(problems({ SPACE_CACHE_SIZE: 'lots' })).toEqual(['SPACE_CACHE_SIZE="lots": must be an integer from 100 to 5000000']);
  });

  test('SPACE_USES_KEPT: the uses a Space state keeps, USES_KEPT_MAX unless set, within its range', () => {
    expect(loadConfig({}, '/srv/metering').spaceUsesKept).toBe(5_000);
    expect(loadConfig({ SPACE_USES_KEPT: '50' }, '/srv/metering').spaceUsesKept).toBe(50);
    expect(problems({ SPACE_USES_KEPT: '1' })).toEqual(['SPACE_USES_KEPT="1": must be an integer from 2 to 10000000']);
  });

  test('SPACE_CACHE_MB: the heap the Space states may take, 160 MiB unless set, within its range', () => {
    expect(loadConfig({}, '/srv/metering').spaceCacheBytes).toBe(160 * 2 ** 20);
    expect(loadConfig({ SPACE_CACHE_MB: '64' }, '/srv/metering').spaceCacheBytes).toBe(64 * 2 ** 20);
    expect(problems({ SPACE_CACHE_MB: '4' })).toEqual(['SPACE_CACHE_MB="4": must be an integer from 8 to 65536']);
    expect(problems({ SPACE_CACHE_MB: '1.5' })).toEqual(['SPACE_CACHE_MB="1.5": must be an integer from 8 to 65536']);
  });

  test('every problem is reported at once', () => {
    expect(problems({ EVENT_STORE: 'kurrentdb', PORT: 'x', PG_SCHEMA: 'Bad-Schema' })).toEqual([
      'PORT="x": must be an integer from 0 to 65535',
      'KURRENTDB_URL: required when EVENT_STORE=kurrentdb (e.g. kurrentdb://host:2113?tls=false)',
      'PG_SCHEMA="Bad-Schema": must be a lower-case SQL identifier',
    ]);
  });
});

describe('openStorage: start-up errors are clear', () => {
  test('PostgreSQL unreachable: names DATABASE_URL and the host, hides the password', async () => {
    // Port 1 on the loopback: nothing listens there, the connection is refused at once.
    const config = loadConfig({ EVENT_STORE: 'postgres', DATABASE_URL: 'postgres://metering:s3cret@127.0.0.1:1/metering' }, '/srv/metering');
    const err = (await openStorage(config).then(
      () => null,
      (e: unknown) => e,
    )) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^EVENT_STORE=postgres: cannot open the event store in PostgreSQL at 127\.0\.0\.1:1\/metering \(DATABASE_URL, schema "metering"\): .*ECONNREFUSED/);
    expect(err.message).not.toContain('s3cret');
    // main.ts prints the stack: it is the sentence, not a trace.
    expect(err.stack).toBe(`Error: ${err.message}`);
  });
});

describe('openStorage: the stores open ready to use', () => {
  test('postgres: store and read model in the same schema and pool, migrated at start (twice is harmless)', async () => {
    const { PG_URL, dropSchema, freshSchemaName } = await import('../event-store/pg-test-db');
    const schema = freshSchemaName('openstorage');
    const config = loadConfig({ EVENT_STORE: 'postgres', DATABASE_URL: PG_URL, PG_SCHEMA: schema }, '/srv/metering');
    try {
      for (let i = 0; i < 2; i++) {
        const { store, readModel } = await openStorage(config);
        try {
          expect(store.constructor.name).toBe('PostgresEventStore');
          expect(readModel.constructor.name).toBe('PostgresBalanceReadModel');
          expect((readModel as unknown as { pool: unknown }).pool).toBe((store as unknown as { pool: unknown }).pool);
          expect(await readModel.checkpoint()).toBe(0n);
          expect(await readModel.dump()).toEqual({ spaces: [], usage: [], thresholds: [] });
          const { rows } = await (readModel as unknown as { pool: import('pg').Pool }).pool.query(
            `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
            [schema],
          );
          expect(rows.map((r) => r.table_name)).toEqual([
            'events', 'global_position', 'read_model_migrations', 'rm_checkpoints', 'rm_spaces', 'rm_thresholds', 'rm_usage', 'schema_migrations', 'snapshots', 'store_identity',
          ]);
        } finally {
          await readModel.close();
          await store.close();
        }
      }
    } finally {
      await dropSchema(schema);
    }
  });

  test('kurrentdb unreachable: names KURRENTDB_URL and the host', async () => {
    const config = loadConfig({ EVENT_STORE: 'kurrentdb', KURRENTDB_URL: 'kurrentdb://admin:changeit@127.0.0.1:1?tls=false' }, '/srv/metering');
    const t0 = Date.now();
    const err = (await openStorage(config).then(
      () => null,
      (e: unknown) => e,
    )) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^EVENT_STORE=kurrentdb: cannot reach KurrentDB at 127\.0\.0\.1:1 \(KURRENTDB_URL\): /);
    expect(err.message).not.toContain('changeit');
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);
});
