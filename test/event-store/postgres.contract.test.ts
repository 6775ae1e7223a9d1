import { Pool } from 'pg';
import {
  AppendResult,
  DuplicateEventIdError,
  PostgresEventStore,
  StoreUnavailableError,
  WrongExpectedRevisionError,
  createEventStore,
} from '@metering/event-store';
import { describeEventStoreContract, newEvent } from '@metering/event-store/contract/event-store.contract';
import { PG_URL, dropSchema, freshSchemaName } from './pg-test-db';

// One schema for the whole file (the contract isolates tests by stream prefix), dropped after.
const schema = freshSchemaName('contract');
const schemas = [schema];

beforeAll(async () => {
  const store = new PostgresEventStore({ url: PG_URL, schema });
  await store.migrate();
  await store.close();
});
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

describeEventStoreContract('postgres', async (o) => {
  const store = new PostgresEventStore({ url: PG_URL, schema, poolConfig: { max: 10 }, maxAppendBytes: o?.maxAppendBytes });
  return { store, cleanup: () => store.close() };
});

describe('PostgresEventStore specifics', () => {
  test('migrate() is safe when several instances start at once, and is idempotent', async () => {
    const s = freshSchemaName('migrate');
    schemas.push(s);
    const stores = Array.from({ length: 4 }, () => new PostgresEventStore({ url: PG_URL, schema: s }));
    try {
      await Promise.all(stores.map((st) => st.migrate()));
      await stores[0].migrate();
      const { rows } = await stores[0].pool.query(`SELECT version, count(*)::int AS n FROM "${s}".schema_migrations GROUP BY version ORDER BY version`);
      expect(rows).toEqual([{ version: 1, n: 1 }, { version: 2, n: 1 }, { version: 3, n: 1 }]);
      const r = await stores[1].append('s', [newEvent()], 'no_stream');
      expect(r.lastGlobalPosition).toBe(1n);
    } finally {
      await Promise.all(stores.map((st) => st.close()));
    }
  });

  test('createEventStore({kind: postgres}) migrates and returns a ready store exposing its pool', async () => {
    const s = freshSchemaName('factory');
    schemas.push(s);
    const store = await createEventStore({ kind: 'postgres', url: PG_URL, schema: s });
    try {
      expect(store).toBeInstanceOf(PostgresEventStore);
      expect(store.pool).toBeInstanceOf(Pool);
      expect(store.schema).toBe(s);
      expect(await store.headPosition()).toBe(0n);
    } finally {
      await store.close();
    }
  });

  test('connection failures are StoreUnavailableError', async () => {
    const store = new PostgresEventStore({ url: 'postgres://postgres@127.0.0.1:1/test', schema, poolConfig: { connectionTimeoutMillis: 2000 } });
    try {
      await expect(store.append('s', [newEvent()], 'no_stream')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.readAll()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.readStream('s')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.migrate()).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await store.close();
    }
  });

  test('rejects a schema name that is not a plain identifier', () => {
    expect(() => new PostgresEventStore({ url: PG_URL, schema: 'x"; DROP TABLE y; --' })).toThrow(TypeError);
  });

  test('appendManyInTransaction commits or rolls back with the caller transaction', async () => {
    const store = new PostgresEventStore({ url: PG_URL, schema });
    const client = await store.pool.connect();
    try {
      const stream = `tx-${newEvent().id}`;
      await client.query('BEGIN');
      await store.appendManyInTransaction(client, [{ streamName: stream, events: [newEvent()], expected: 'no_stream' }]);
      await client.query('ROLLBACK');
      expect(await store.readStream(stream)).toEqual([]);

      await client.query('BEGIN');
      const [r] = await store.appendManyInTransaction(client, [{ streamName: stream, events: [newEvent(), newEvent()], expected: 'no_stream' }]);
      expect(r.nextExpectedRevision).toBe(1);
      expect(await store.readStream(stream)).toEqual([]); // not committed yet
      await client.query('COMMIT');
      expect(await store.readStream(stream)).toHaveLength(2);

      // A conflict inside the caller's transaction is translated; the caller rolls back.
      await client.query('BEGIN');
      await expect(
        store.appendManyInTransaction(client, [{ streamName: stream, events: [newEvent()], expected: 0 }]),
      ).rejects.toMatchObject({ actual: 1 });
      await client.query('ROLLBACK');
    } finally {
      client.release();
      await store.close();
    }
  });

  test('concurrent appends are group-committed: one plan query and one insert statement for the group, failures alone', async () => {
    const store = new PostgresEventStore({ url: PG_URL, schema });
    try {
      const p = `grp-${newEvent().id.slice(0, 8)}-`;
      await store.append(`${p}0`, [newEvent()], 'no_stream');
      const spy = jest.spyOn(store.pool, 'query');
      const outcomes = await Promise.allSettled(
        Array.from({ length: 100 }, (_, i) => store.append(`${p}${i}`, [newEvent(), newEvent()], i === 0 ? 0 : i === 50 ? 3 : 'no_stream')),
      );
      const texts = spy.mock.calls.map((c) => String(c[0]));
      spy.mockRestore();
      expect(texts.filter((t) => t.includes('unnest($1::text[])'))).toHaveLength(1); // the plan
      expect(texts.filter((t) => t.includes('UPDATE') && t.includes('global_position'))).toHaveLength(1); // allocation + insert
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason)).toEqual([
        expect.any(WrongExpectedRevisionError),
      ]);
      const ok = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.lastGlobalPosition] : []));
      // One allocation: the group's positions are consecutive, in call order.
      for (let i = 1; i < ok.length; i++) expect(ok[i]).toBe(ok[i - 1] + 2n);
    } finally {
      await store.close();
    }
  });

  test('appends requested before close() are still written; after it, append refuses', async () => {
    const store = new PostgresEventStore({ url: PG_URL, schema });
    const s = `close-${newEvent().id}`;
    const pending = [store.append(s, [newEvent()], 'no_stream'), store.append(s, [newEvent()], 0)];
    await store.close();
    expect((await Promise.all(pending)).map((r) => r.nextExpectedRevision)).toEqual([0, 1]);
    await expect(store.append(s, [newEvent()], 1)).rejects.toThrow('closed');
    const other = new PostgresEventStore({ url: PG_URL, schema });
    try {
      expect(await other.streamRevision(s)).toBe(1);
    } finally {
      await other.close();
    }
  });

  test('a unique-key race lost between plan and insert is re-planned into the precise error', async () => {
    // Two stores = two pools; many rounds of same-revision races make the insert-time conflict
    // (not only the plan-time check) happen, and it must surface as the port's errors.
    const a = new PostgresEventStore({ url: PG_URL, schema });
    const b = new PostgresEventStore({ url: PG_URL, schema });
    try {
      const stream = `race-${newEvent().id}`;
      let rev: number | 'no_stream' = 'no_stream';
      for (let round = 0; round < 15; round++) {
        const shared = newEvent();
        const outcomes: PromiseSettledResult<AppendResult>[] = await Promise.allSettled([
          a.append(stream, [newEvent()], rev),
          b.append(stream, [newEvent()], rev),
          a.append(stream, [shared], rev),
          b.append(stream, [shared], rev),
        ]);
        const ok: AppendResult[] = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
        const written: AppendResult[] = ok.filter((r) => !r.alreadyAppended);
        expect(written).toHaveLength(1);
        for (const o of outcomes) {
          if (o.status === 'rejected') {
            expect(o.reason instanceof WrongExpectedRevisionError || o.reason instanceof DuplicateEventIdError).toBe(true);
          }
        }
        rev = written[0].nextExpectedRevision;
      }
      expect(await a.streamRevision(stream)).toBe(14);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
