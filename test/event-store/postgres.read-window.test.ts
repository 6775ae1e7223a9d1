/**
 * PostgreSQL reads of $all walk windows of positions: the pages are those one filtered query
 * would return, across window boundaries, and a window reads its own rows only (on a fresh table
 * without statistics, a filtered page used to be planned as a scan of every later event and a
 * sort, for each page).
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { type EventStore, PostgresEventStore, type ReadAllOptions, type StoredEvent } from '@metering/event-store';
import { PG_URL, dropSchema, freshSchemaName } from './pg-test-db';

const ev = (type: string, n: number) => ({ id: randomUUID(), type, data: { n } });

describe('PostgreSQL readAll in windows of positions', () => {
  let store: PostgresEventStore;
  let schema: string;
  let all: StoredEvent[];

  beforeAll(async () => {
    schema = freshSchemaName('window');
    // A window of 3 rows: every filtered read below crosses several windows.
    store = new PostgresEventStore({ url: PG_URL, schema, readScanWindow: 3 });
    await store.migrate();
    const plan: [string, string[]][] = [
      ['other-1', ['A', 'A', 'B', 'A', 'A', 'A', 'A']],
      ['space-a', ['A', 'B']],
      ['other-2', ['B', 'B', 'A', 'A', 'A']],
      ['space-b', ['A', 'A', 'B']],
      ['space-a', ['A']],
      ['other-1', ['A', 'A', 'A', 'A']],
    ];
    let n = 0;
    const revisions = new Map<string, number>();
    for (const [stream, types] of plan) {
      const rev = revisions.get(stream) ?? -1;
      await store.append(stream, types.map((t) => ev(t, n++)), rev === -1 ? 'no_stream' : rev);
      revisions.set(stream, rev + types.length);
    }
    all = await store.readAll();
    expect(all).toHaveLength(22);
  });

  afterAll(async () => {
    await store.close();
    await dropSchema(schema);
  });

  const expected = (o: ReadAllOptions) =>
    all
      .filter((e) => e.globalPosition > (o.after ?? 0n))
      .filter((e) => !o.streamPrefix || e.streamName.startsWith(o.streamPrefix))
      .filter((e) => !o.types || o.types.includes(e.type))
      .slice(0, o.maxCount ?? Number.POSITIVE_INFINITY);

  const cases: ReadAllOptions[] = [];
  for (const streamPrefix of [undefined, 'space-', 'other-2', 'nothing-'])
    for (const types of [undefined, ['B'], ['A', 'B']])
      for (const maxCount of [undefined, 1, 2, 4, 100])
        for (const after of [0n, 5n, 9n, 21n]) if (streamPrefix || types) cases.push({ after, maxCount, streamPrefix, types });

  it('readAll and readAllJson return what one filtered query returns, for every prefix, types, position and page size', async () => {
    for (const o of cases) {
      const want = expected(o).map((e) => `${e.globalPosition}:${e.streamName}:${e.type}`);
      expect({ o, got: (await store.readAll(o)).map((e) => `${e.globalPosition}:${e.streamName}:${e.type}`) }).toEqual({ o, got: want });
      const json = await store.readAllJson(o);
      expect({ o, got: json.map((e) => `${e.globalPosition}:${e.streamName}:${e.type}`) }).toEqual({ o, got: want });
      expect(json.map((e) => JSON.parse(e.dataJson))).toEqual(expected(o).map((e) => e.data));
    }
  });

  it('paging a filtered subscription-style read with small pages visits every matching event once, in order', async () => {
    const seen: bigint[] = [];
    let after = 0n;
    for (;;) {
      const page = await store.readAll({ after, maxCount: 2, streamPrefix: 'space-' });
      if (page.length === 0) break;
      seen.push(...page.map((e) => e.globalPosition));
      after = page[page.length - 1].globalPosition;
    }
    expect(seen).toEqual(expected({ streamPrefix: 'space-' }).map((e) => e.globalPosition));
  });

  it('a window reads its own rows only, through the primary key, on a table never analysed', async () => {
    const fresh = freshSchemaName('window_plan');
    const s2: EventStore & { migrate(): Promise<void> } = new PostgresEventStore({ url: PG_URL, schema: fresh });
    const c = new Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await s2.migrate();
      for (let i = 0; i < 20; i++) await s2.append(`space-${i}`, Array.from({ length: 1000 }, (_, k) => ev('A', k)), 'no_stream');
      const stats = await c.query(`SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'events'`, [fresh]);
      // The point of the test: no statistics yet (autovacuum has not looked at the new table).
      expect(stats.rows[0]).toEqual({ last_analyze: null, last_autoanalyze: null });
      const sqlOf = (s: PostgresEventStore) => (s as unknown as { sql: { readAllWindow: string } }).sql.readAllWindow;
      const plan = await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sqlOf(s2 as PostgresEventStore)}`, ['5000', 'space-', null, 10_000]);
      type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; 'Actual Rows': number; Plans?: PlanNode[] };
      const scans: PlanNode[] = [];
      const walk = (n: PlanNode) => {
        if (/Scan/.test(n['Node Type']) && (n['Relation Name'] === 'events' || n['Index Name'] === 'events_pkey')) scans.push(n);
        for (const p of n.Plans ?? []) walk(p);
      };
      walk(plan.rows[0]['QUERY PLAN'][0].Plan);
      // Every scan of the events goes through the primary key and reads the window's rows at most
      // (the head's lookup reads one): never the 15,000 events after the position, nor the table.
      expect(scans.length).toBeGreaterThan(0);
      for (const n of scans) {
        expect(n['Node Type']).not.toBe('Seq Scan');
        expect(n['Actual Rows']).toBeLessThanOrEqual(10_000);
      }
    } finally {
      await c.end();
      await s2.close();
      await dropSchema(fresh);
    }
  });

  it('refuses a scan window that is not a positive integer, by name', () => {
    expect(() => new PostgresEventStore({ url: PG_URL, schema: 'x', readScanWindow: 0 })).toThrow(/readScanWindow must be an integer >= 1/);
  });
});
