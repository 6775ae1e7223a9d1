/**
 * Part of the EventStore contract (see event-store.contract.ts, the entry every adapter calls):
 * the global log, snapshots, events by id, data and metadata, opaque positions.
 * Test files only.
 */
import { randomUUID } from 'node:crypto';
import { EventStore, StoredEvent } from '../port';
import { ContractContext, newEvent, events, expectStrictlyIncreasing } from './contract-support';

export function describeGlobalLog(c: ContractContext): void {
  describe('the global log', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('global positions strictly increase across streams, and readAll `after` paging returns each event exactly once', async () => {
      const written: string[] = [];
      const streams = [`${p}a`, `${p}b`, `${p}c`];
      const revs = new Map<string, number | 'no_stream'>(streams.map((s) => [s, 'no_stream']));
      let lastPos = 0n;
      for (let i = 0; i < 12; i++) {
        const s = streams[i % 3];
        const evs = events((i % 2) + 1);
        const r = await store.append(s, evs, revs.get(s) as number | 'no_stream');
        revs.set(s, r.nextExpectedRevision);
        expect(r.lastGlobalPosition > lastPos).toBe(true);
        lastPos = r.lastGlobalPosition;
        written.push(...evs.map((e) => e.id));
      }
      const all = await store.readAll({ streamPrefix: p });
      expect(all.map((e) => e.id)).toEqual(written);
      expectStrictlyIncreasing(all.map((e) => e.globalPosition));
      expect(all[all.length - 1].globalPosition).toBe(lastPos);

      for (const pageSize of [1, 4, 7]) {
        const seen: StoredEvent[] = [];
        let after: bigint | undefined;
        for (let guard = 0; guard < 100; guard++) {
          const page = await store.readAll({ after, maxCount: pageSize, streamPrefix: p });
          expect(page.length).toBeLessThanOrEqual(pageSize);
          if (page.length === 0) break;
          seen.push(...page);
          after = page[page.length - 1].globalPosition;
        }
        expect(seen.map((e) => e.id)).toEqual(written);
      }
      // Starting after a position skips exactly the events at or before it.
      const mid = all[5].globalPosition;
      expect((await store.readAll({ after: mid, streamPrefix: p })).map((e) => e.id)).toEqual(written.slice(6));
      expect(await store.readAll({ after: lastPos, streamPrefix: p })).toEqual([]);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(lastPos);
    });

    test('readAll filters by stream prefix (case-sensitive, no wildcards) and by event types', async () => {
      await store.append(`${p}space-1`, [newEvent('UsageRecorded'), newEvent('ThresholdCrossed')], 'no_stream');
      await store.append(`${p}Space-2`, [newEvent('UsageRecorded')], 'no_stream');
      await store.append(`${p}catalog`, [newEvent('CatalogPublished')], 'no_stream');
      await store.append(`${p}space_x`, [newEvent('UsageRecorded')], 'no_stream');
      await store.append(`${p}spacex-3`, [newEvent('UsageRecorded')], 'no_stream');
      await store.append(`${p}space-4`, [newEvent('PeriodReset')], 'no_stream');

      const spaces = await store.readAll({ streamPrefix: `${p}space-` });
      expect(spaces.map((e) => `${e.streamName}/${e.type}`)).toEqual([
        `${p}space-1/UsageRecorded`,
        `${p}space-1/ThresholdCrossed`,
        `${p}space-4/PeriodReset`,
      ]);
      // '_' and '%' are literal characters in a prefix.
      expect((await store.readAll({ streamPrefix: `${p}space_` })).map((e) => e.streamName)).toEqual([`${p}space_x`]);
      expect(await store.readAll({ streamPrefix: `${p}%` })).toEqual([]);

      const typed = await store.readAll({ streamPrefix: p, types: ['ThresholdCrossed', 'PeriodReset'] });
      expect(typed.map((e) => e.type)).toEqual(['ThresholdCrossed', 'PeriodReset']);
      const both = await store.readAll({ streamPrefix: `${p}space-`, types: ['UsageRecorded'], maxCount: 10 });
      expect(both.map((e) => e.streamName)).toEqual([`${p}space-1`]);
      // Filters combine with paging.
      const page1 = await store.readAll({ streamPrefix: p, types: ['UsageRecorded'], maxCount: 2 });
      const page2 = await store.readAll({ streamPrefix: p, types: ['UsageRecorded'], after: page1[1].globalPosition });
      expect([...page1, ...page2].map((e) => e.streamName)).toEqual([`${p}space-1`, `${p}Space-2`, `${p}space_x`, `${p}spacex-3`]);
      await expect(store.readAll({ types: [] })).rejects.toThrow(TypeError);
    });
  });
}

export function describeSnapshots(c: ContractContext): void {
  describe('snapshots', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('none until written; the latest by revision is kept, an older one never replaces it', async () => {
      expect(await store.readSnapshot(`${p}space-a`)).toBeNull();
      await store.writeSnapshot({ streamName: `${p}space-a`, revision: 10, schema: 2, data: '{"v":10,"ü":"é"}' });
      expect(await store.readSnapshot(`${p}space-a`)).toEqual({ streamName: `${p}space-a`, revision: 10, schema: 2, data: '{"v":10,"ü":"é"}' });
      await store.writeSnapshot({ streamName: `${p}space-a`, revision: 7, schema: 2, data: 'older' });
      expect((await store.readSnapshot(`${p}space-a`))?.revision).toBe(10);
      await store.writeSnapshot({ streamName: `${p}space-a`, revision: 25, schema: 3, data: 'newer' });
      expect(await store.readSnapshot(`${p}space-a`)).toEqual({ streamName: `${p}space-a`, revision: 25, schema: 3, data: 'newer' });
      // per stream, and invisible to stream and global reads
      expect(await store.readSnapshot(`${p}space-b`)).toBeNull();
      expect(await store.readStream(`${p}space-a`)).toEqual([]);
      expect(await store.readAll({ streamPrefix: p })).toEqual([]);
    });

    test('a large snapshot round-trips; deleteSnapshots removes every one', async () => {
      const big = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => [`id-${i}`, i, i % 3]));
      await store.writeSnapshot({ streamName: `${p}big`, revision: 0, schema: 1, data: big });
      await store.writeSnapshot({ streamName: `${p}other`, revision: 3, schema: 1, data: '{}' });
      expect((await store.readSnapshot(`${p}big`))?.data).toBe(big);
      expect(await store.deleteSnapshots()).toBeGreaterThanOrEqual(2);
      expect(await store.readSnapshot(`${p}big`)).toBeNull();
      expect(await store.readSnapshot(`${p}other`)).toBeNull();
    });

    test('a malformed snapshot is refused before anything is written', async () => {
      await expect(store.writeSnapshot({ streamName: `${p}x`, revision: -1, schema: 1, data: '' })).rejects.toThrow(TypeError);
      await expect(store.writeSnapshot({ streamName: `${p}x`, revision: 1.5, schema: 1, data: '' })).rejects.toThrow(TypeError);
      expect(await store.readSnapshot(`${p}x`)).toBeNull();
    });
  });
}

export function describeColdStarts(c: ContractContext): void {
  describe('cold starts of many streams (readColdStarts, where offered)', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('each stream: its latest snapshot and at most maxCount events after it, as readSnapshot + readStream answer', async () => {
      if (!store.readColdStarts) return; // optional: callers read each stream on their own
      const ev = (n: number) => Array.from({ length: n }, (_, i) => newEvent('E', { i }));
      await store.append(`${p}a`, ev(5), 'no_stream'); // no snapshot: from revision 0
      await store.append(`${p}b`, ev(6), 'no_stream');
      await store.writeSnapshot({ streamName: `${p}b`, revision: 2, schema: 1, data: '{"b":2}' }); // tail 3..5
      await store.writeSnapshot({ streamName: `${p}c`, revision: 0, schema: 1, data: 'only' }); // snapshot, no events after it
      await store.append(`${p}d`, ev(3), 'no_stream');
      await store.writeSnapshot({ streamName: `${p}d`, revision: 2, schema: 1, data: 'head' }); // snapshot at the head: no tail
      const names = [`${p}a`, `${p}b`, `${p}c`, `${p}d`, `${p}none`, `${p}a`];
      const got = await store.readColdStarts(names, 4);
      expect([...got.keys()].sort()).toEqual([`${p}a`, `${p}b`, `${p}c`, `${p}d`, `${p}none`].sort());
      for (const name of new Set(names)) {
        const snapshot = await store.readSnapshot(name);
        const events = await store.readStream(name, { fromRevision: snapshot ? snapshot.revision + 1 : 0, maxCount: 4 });
        expect(got.get(name)).toEqual({ snapshot, events });
      }
      expect(got.get(`${p}a`)!.events.map((e) => e.revision)).toEqual([0, 1, 2, 3]); // a full page: read on with readStream
      expect(got.get(`${p}b`)!.events.map((e) => e.revision)).toEqual([3, 4, 5]);
      expect(got.get(`${p}none`)).toEqual({ snapshot: null, events: [] });
      expect((await store.readColdStarts([], 4)).size).toBe(0);
      await expect(store.readColdStarts([`${p}a`], 0)).rejects.toThrow(TypeError);
    });
  });
}

export function describeEventsById(c: ContractContext): void {
  const { offersReadById } = c;
  (offersReadById ? describe : describe.skip)('events by id', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('returns the stored events with those ids, from any stream; unknown ids are left out', async () => {
      const a = newEvent('A', { n: 1 });
      const b = newEvent('B', { n: 2 });
      await store.append(`${p}s1`, [a], 'no_stream');
      await store.append(`${p}s2`, [newEvent(), b], 'no_stream');
      const found = await store.readEventsById!([b.id, randomUUID(), a.id.toUpperCase(), 'not-a-uuid']);
      expect(found.map((e) => [e.id, e.streamName, e.revision, e.data]).sort()).toEqual(
        [[a.id, `${p}s1`, 0, { n: 1 }], [b.id, `${p}s2`, 1, { n: 2 }]].sort(),
      );
      expect(await store.readEventsById!([])).toEqual([]);
    });
  });
}

export function describeDataAndMetadata(c: ContractContext): void {
  describe('data and metadata', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('JSON data and metadata round-trip, nested objects and unicode included', async () => {
      const data = {
        spaceId: 'spc_ü',
        nested: { a: [1, 2.5, -3, { deep: { deeper: [null, true, false, ''] } }], empty: {}, list: [] },
        unicode: 'Grüße, 你好, こんにちは, مرحبا, שלום, 🙂🚀, e\u0301, \u2028\u2029',
        escapes: 'quote " backslash \\ newline \n tab \t nul \u0000 slash /',
        numbers: { zero: 0, negative: -42, fraction: 0.1, big: 9007199254740991, exp: 1.5e-7, large: 1e21 },
        'key with spaces & ünïcode 🔑': 'v',
      };
      const metadata = { causationId: randomUUID(), correlationId: 'corr-é', schema: { v: 2 }, tags: ['a', 'ü'] };
      const e = { id: randomUUID(), type: 'Ünïcode.Type.v1', data, metadata };
      const plain = newEvent('NoMetadata', { x: 1 });
      await store.append(`${p}json-ü`, [e, plain], 'no_stream');
      const [read, readPlain] = await store.readStream(`${p}json-ü`);
      expect(read.data).toEqual(data);
      expect(read.metadata).toEqual(metadata);
      expect(read.type).toBe('Ünïcode.Type.v1');
      expect(read.streamName).toBe(`${p}json-ü`);
      expect(readPlain.metadata).toEqual({});
      const [viaAll] = await store.readAll({ streamPrefix: `${p}json-` });
      expect(viaAll.data).toEqual(data);
      expect(viaAll.metadata).toEqual(metadata);
    });

    test('undefined properties are dropped like JSON.stringify does', async () => {
      await store.append(`${p}s`, [newEvent('T', { a: 1, b: undefined, c: { d: undefined } })], 'no_stream');
      const [e] = await store.readStream(`${p}s`);
      expect(e.data).toEqual({ a: 1, c: {} });
      expect(Object.keys(e.data)).toEqual(['a', 'c']);
    });
  });
}

export function describeOpaquePositions(c: ContractContext): void {
  describe('positions are opaque tokens', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('hasPosition: true for 0n and every stored position, false for values the store never handed out', async () => {
      const r = await store.append(`${p}a`, events(3), 'no_stream');
      const read = await store.readStream(`${p}a`);
      expect(await store.hasPosition(0n)).toBe(true);
      for (const e of read) expect(await store.hasPosition(e.globalPosition)).toBe(true);
      // Past the last event (dense stores: the next free number; sparse ones: inside or after a record).
      expect(await store.hasPosition(r.lastGlobalPosition + 1n)).toBe(false);
      expect(await store.hasPosition(-1n)).toBe(false);
    });

    test('storeId is stable and non-empty', async () => {
      const id = await store.storeId();
      expect(typeof id).toBe('string');
      expect(id.length).toBeGreaterThan(0);
      expect(await store.storeId()).toBe(id);
    });
  });
}
