/**
 * The pools the PostgreSQL adapter creates run with JIT compilation off: on a table without
 * statistics the planner's cost estimates for the store's short indexed statements can pass
 * jit_above_cost, and each call was then compiled (about 16 ms of server time for the cold-start
 * read of 500 streams, against 1 ms of work).
 */
import { randomUUID } from 'node:crypto';
import { PostgresEventStore } from '@metering/event-store';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { PG_URL, dropSchema, freshSchemaName } from './pg-test-db';

describe('PostgreSQL pools: JIT off', () => {
  let store: PostgresEventStore;
  let schema: string;

  beforeAll(async () => {
    schema = freshSchemaName('nojit');
    store = new PostgresEventStore({ url: PG_URL, schema, poolConfig: { max: 3 } });
    await store.migrate();
    await store.append('space-a', [{ id: randomUUID(), type: 'A', data: { n: 1 } }], 'no_stream');
  });

  afterAll(async () => {
    await store.close();
    await dropSchema(schema);
  });

  it('every session of the store pool has jit off, the first query of a new connection included', async () => {
    const clients = await Promise.all([store.pool.connect(), store.pool.connect(), store.pool.connect()]);
    try {
      for (const c of clients) expect((await c.query<{ jit: string }>('SHOW jit')).rows[0].jit).toBe('off');
    } finally {
      for (const c of clients) c.release();
    }
  });

  it('a statement the planner costs above jit_above_cost is not compiled', async () => {
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL jit_above_cost = 0');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE) SELECT count(*) FROM "${schema}".events WHERE stream_name = ANY($1::text[])`,
        [['space-a', 'space-b']],
      );
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toContain('Execution Time');
      expect(plan).not.toMatch(/^JIT:/m);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('startup options given in poolConfig come after it and win', async () => {
    const other = new PostgresEventStore({ url: PG_URL, schema, poolConfig: { options: '-c jit=on -c statement_timeout=12345' } });
    try {
      const row = (await other.pool.query<{ jit: string; t: string }>("SELECT current_setting('jit') AS jit, current_setting('statement_timeout') AS t")).rows[0];
      expect(row).toEqual({ jit: 'on', t: '12345ms' });
    } finally {
      await other.close();
    }
  });

  it("a read model's own pool has jit off too", async () => {
    const rm = new PostgresBalanceReadModel({ url: PG_URL, schema });
    try {
      expect((await rm.pool.query<{ jit: string }>('SHOW jit')).rows[0].jit).toBe('off');
    } finally {
      await rm.close();
    }
  });
});
