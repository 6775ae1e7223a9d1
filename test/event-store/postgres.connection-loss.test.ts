/**
 * A pooled connection that dies while it is checked out (between the queries of a transaction,
 * e.g. during start-up migrations when the server restarts or a proxy drops it) must not crash the
 * process: pg removes the pool's error listener from a checked-out client, and a client that emits
 * 'error' with no listener throws it as an uncaught exception (the torture run saw the service
 * exit with ECONNRESET during a store outage). The pool gives every client a listener of its own;
 * the dead client's next query fails, and the pool goes on with new connections.
 */
import { Client } from 'pg';
import { PostgresEventStore } from '@metering/event-store';
import { newEvent } from '@metering/event-store/contract/event-store.contract';
import { PG_URL, dropSchema, freshSchemaName } from './pg-test-db';

const schema = freshSchemaName('connloss');
afterAll(() => dropSchema(schema));

test('a checked-out client whose server session is terminated: no uncaught error, its next query fails, the store goes on', async () => {
  const store = new PostgresEventStore({ url: PG_URL, schema });
  await store.migrate();
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  const admin = new Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    const client = await store.pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    // Idle in the middle of its work, as between two statements of a migration.
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    await new Promise((r) => setTimeout(r, 300));
    expect(uncaught).toEqual([]);
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release(true);
    const r = await store.append('space-after-loss', [newEvent('Tested', { n: 1 })], 'no_stream');
    expect(r.nextExpectedRevision).toBe(0);
  } finally {
    process.off('uncaughtException', onUncaught);
    await admin.end();
    await store.close();
  }
});
