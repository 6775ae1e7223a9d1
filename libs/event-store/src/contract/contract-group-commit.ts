/**
 * Part of the EventStore contract (see event-store.contract.ts, the entry every adapter calls):
 * concurrent appends (group commit), the append byte budget and appendMany.
 * Test files only.
 */
import { chunkByBytes } from '../internal/append-budget';
import { AppendRequest, AppendTooLargeError, DuplicateEventIdError, EventStore, WrongExpectedRevisionError } from '../port';
import { ContractContext, ContractStore, newEvent, events, rejectionOf, expectStrictlyIncreasing } from './contract-support';

export function describeGroupCommit(c: ContractContext): void {
  const { uniqueIdsAcrossStreams, groupCommit } = c;
  describe('concurrent appends (group commit)', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('concurrent appends to many streams all land, each with its exact revision', async () => {
      const n = 120;
      const streams = Array.from({ length: n }, (_, i) => `${p}many-${i}`);
      // A third of the streams exist already (1 or 2 events), the rest are new.
      const before = await Promise.all(
        streams.map((s, i) => (i % 3 === 0 ? store.append(s, events((i % 2) + 1), 'no_stream').then((r) => r.nextExpectedRevision) : -1)),
      );
      const batches = streams.map((_, i) => events((i % 4) + 1));
      const results = await Promise.all(
        streams.map((s, i) => store.append(s, batches[i], before[i] === -1 ? 'no_stream' : before[i])),
      );
      results.forEach((r, i) => {
        expect(r.alreadyAppended).toBe(false);
        expect(r.nextExpectedRevision).toBe(before[i] + batches[i].length);
      });
      for (const [i, s] of streams.entries()) {
        const read = await store.readStream(s);
        expect(read.map((e) => e.revision)).toEqual(read.map((_, k) => k));
        expect(read.slice(before[i] + 1).map((e) => e.id)).toEqual(batches[i].map((e) => e.id));
        expect(read[read.length - 1].globalPosition).toBe(results[i].lastGlobalPosition);
      }
      // A second concurrent round on the revisions the first one returned.
      const again = await Promise.all(streams.map((s, i) => store.append(s, events(1), results[i].nextExpectedRevision)));
      again.forEach((r, i) => expect(r.nextExpectedRevision).toBe(results[i].nextExpectedRevision + 1));
    });

    test('in one concurrent group, a wrong expected revision fails alone and the others commit', async () => {
      const streams = Array.from({ length: 20 }, (_, i) => `${p}g-${i}`);
      await Promise.all(streams.map((s) => store.append(s, events(1), 'no_stream')));
      const outcomes = await Promise.allSettled(streams.map((s, i) => store.append(s, events(2), i === 7 ? 3 : i === 12 ? 'no_stream' : 0)));
      outcomes.forEach((o, i) => {
        if (i === 7 || i === 12) {
          expect(o.status).toBe('rejected');
          const reason = (o as PromiseRejectedResult).reason;
          expect(reason).toBeInstanceOf(WrongExpectedRevisionError);
          expect(reason).toMatchObject({ streamName: streams[i], expected: i === 7 ? 3 : 'no_stream', actual: 0 });
        } else {
          expect(o.status).toBe('fulfilled');
          expect((o as PromiseFulfilledResult<{ nextExpectedRevision: number }>).value.nextExpectedRevision).toBe(2);
        }
      });
      for (const [i, s] of streams.entries()) expect(await store.readStream(s)).toHaveLength(i === 7 || i === 12 ? 1 : 3);
    });

    test('an idempotent retry inside a concurrent group reports alreadyAppended and writes nothing', async () => {
      const s = `${p}retry`;
      const stored = events(2);
      const first = await store.append(s, stored, 'no_stream');
      const head = await store.headPosition();
      const others = Array.from({ length: 10 }, (_, i) => `${p}other-${i}`);
      const [retry, ...rest] = await Promise.all([
        store.append(s, stored, 'no_stream'),
        ...others.map((o) => store.append(o, events(1), 'no_stream')),
      ]);
      expect(retry).toEqual({ nextExpectedRevision: 1, lastGlobalPosition: first.lastGlobalPosition, alreadyAppended: true });
      expect(rest.every((r) => !r.alreadyAppended && r.nextExpectedRevision === 0)).toBe(true);
      expect(await store.readStream(s)).toHaveLength(2);
      expect((await store.readAll({ after: head })).filter((e) => e.streamName === s)).toEqual([]);
    });

    (groupCommit ? test : test.skip)('the same append twice in one group: the first writes, the second is an idempotent retry of it', async () => {
      const s = `${p}twice`;
      const evs = events(2);
      const [a, b] = await Promise.all([store.append(s, evs, 'no_stream'), store.append(s, evs, 'no_stream')]);
      expect(a).toMatchObject({ nextExpectedRevision: 1, alreadyAppended: false });
      expect(b).toEqual({ nextExpectedRevision: 1, lastGlobalPosition: a.lastGlobalPosition, alreadyAppended: true });
      expect((await store.readStream(s)).map((e) => e.id)).toEqual(evs.map((e) => e.id));
    });

    (groupCommit ? test : test.skip)('two appends to the same stream in one group: the revision the first leaves succeeds, a stale one fails', async () => {
      const s = `${p}same`;
      await store.append(s, events(1), 'no_stream');
      const [e1, e2, e3] = [events(2), events(1), events(1)];
      const outcomes = await Promise.allSettled([
        store.append(s, e1, 0),
        store.append(`${p}between`, events(1), 'no_stream'),
        store.append(s, e2, 2), // the revision e1 leaves
        store.append(s, e3, 2), // stale: e2 moved the stream to 3
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
      expect((outcomes[0] as PromiseFulfilledResult<{ nextExpectedRevision: number }>).value.nextExpectedRevision).toBe(2);
      expect((outcomes[2] as PromiseFulfilledResult<{ nextExpectedRevision: number }>).value.nextExpectedRevision).toBe(3);
      const reason = (outcomes[3] as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(WrongExpectedRevisionError);
      expect(reason).toMatchObject({ streamName: s, expected: 2, actual: 3 });
      const read = await store.readStream(s);
      expect(read.slice(1).map((e) => e.id)).toEqual([...e1, ...e2].map((e) => e.id));
      expect(read.map((e) => e.revision)).toEqual([0, 1, 2, 3]);
    });

    test('a duplicate id across two requests of one group: one wins, the other gets DuplicateEventIdError', async () => {
      const shared = newEvent();
      const target = uniqueIdsAcrossStreams ? [`${p}dup-a`, `${p}dup-b`] : [`${p}dup`, `${p}dup`];
      const outcomes = await Promise.allSettled([
        store.append(target[0], [newEvent(), shared], 'any'),
        store.append(`${p}dup-bystander`, events(1), 'no_stream'),
        store.append(target[1], [shared, newEvent()], 'any'),
      ]);
      expect(outcomes[1].status).toBe('fulfilled');
      const pair = [outcomes[0], outcomes[2]];
      expect(pair.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const lost = pair.find((o): o is PromiseRejectedResult => o.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(DuplicateEventIdError);
      expect(lost.reason).toMatchObject({ eventId: shared.id });
      const all = [...(await store.readStream(target[0])), ...(target[1] !== target[0] ? await store.readStream(target[1]) : [])];
      expect(all.filter((e) => e.id === shared.id)).toHaveLength(1);
      expect(all).toHaveLength(2);
    });

    test('positions strictly increase in commit order across a concurrent group', async () => {
      const head = await store.headPosition();
      const streams = Array.from({ length: 40 }, (_, i) => `${p}pos-${i}`);
      const batches = streams.map((_, i) => events((i % 3) + 1));
      const results = await Promise.all(streams.map((s, i) => store.append(s, batches[i], 'no_stream')));
      const mine = (await store.readAll({ after: head })).filter((e) => e.streamName.startsWith(`${p}pos-`));
      expect(mine).toHaveLength(batches.reduce((n, b) => n + b.length, 0));
      expectStrictlyIncreasing(mine.map((e) => e.globalPosition));
      // Each append's events are contiguous in the log and its result names its last one.
      for (const [i, s] of streams.entries()) {
        const at = mine.findIndex((e) => e.streamName === s);
        expect(mine.slice(at, at + batches[i].length).map((e) => e.id)).toEqual(batches[i].map((e) => e.id));
        expect(mine[at + batches[i].length - 1].globalPosition).toBe(results[i].lastGlobalPosition);
      }
      // Group-committing adapters apply a group in call order.
      if (groupCommit) {
        expect(mine.map((e) => e.id)).toEqual(batches.flat().map((e) => e.id));
        expectStrictlyIncreasing(results.map((r) => r.lastGlobalPosition));
      }
    });
  });
}

export function describeAppendBudget(c: ContractContext): void {
  const { factory } = c;
  describe('append byte budget (maxAppendBytes)', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    const BUDGET = 1500;
    let small: ContractStore | undefined;
    afterEach(async () => {
      await small?.cleanup();
      small = undefined;
    });
    const payload = (n: number) => ({ text: 'x'.repeat(n) });

    test('an append over the budget is refused before anything is written; one under it is kept', async () => {
      small = await factory({ maxAppendBytes: BUDGET });
      const s = small.store;
      expect(s.maxAppendBytes).toBe(BUDGET);
      const big = [newEvent('Tested', payload(700)), newEvent('Tested', payload(700))];
      const err = await rejectionOf(s.append(`${p}a`, big, 'no_stream'));
      expect(err).toBeInstanceOf(AppendTooLargeError);
      expect(err).toMatchObject({ streamName: `${p}a`, eventCount: 2, maxAppendBytes: BUDGET });
      expect((err as Error).message).toMatch(/exceeds the store's append budget of 1500 bytes.*nothing was written/);
      expect(await s.streamRevision(`${p}a`)).toBe(-1);
      // The same events, chunked under the budget, all go in (order kept).
      const chunks = chunkByBytes(`${p}a`, big, BUDGET);
      expect(chunks.map((c) => c.length)).toEqual([1, 1]);
      let expected: number | 'no_stream' = 'no_stream';
      for (const c of chunks) expected = (await s.append(`${p}a`, c, expected)).nextExpectedRevision;
      expect((await s.readStream(`${p}a`)).map((e) => e.id)).toEqual(big.map((e) => e.id));
      // One event alone over the budget cannot be chunked.
      expect(() => chunkByBytes(`${p}b`, [newEvent('Tested', payload(2000))], BUDGET)).toThrow(AppendTooLargeError);
    });

    test('appendMany holds each request to the budget and writes nothing when one is over', async () => {
      small = await factory({ maxAppendBytes: BUDGET });
      const s = small.store;
      if (typeof s.appendMany !== 'function') return; // optional in the port (KurrentDB: not offered)
      const err = await rejectionOf(
        s.appendMany([
          { streamName: `${p}a`, events: [newEvent('Tested', payload(100))], expected: 'no_stream' },
          { streamName: `${p}b`, events: [newEvent('Tested', payload(1000)), newEvent('Tested', payload(1000))], expected: 'no_stream' },
        ]),
      );
      expect(err).toBeInstanceOf(AppendTooLargeError);
      expect(await s.streamRevision(`${p}a`)).toBe(-1);
      expect(await s.streamRevision(`${p}b`)).toBe(-1);
    });
  });
}

export function describeAppendMany(c: ContractContext): void {
  const { offersAppendMany } = c;
  (offersAppendMany ? describe : describe.skip)('appendMany', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    const itIf = (fn: string, body: (appendMany: (b: AppendRequest[]) => ReturnType<NonNullable<EventStore['appendMany']>>) => Promise<void>) =>
      test(fn, async () => {
        if (typeof store.appendMany !== 'function') throw new Error('the adapter was declared to offer appendMany but does not');
        await body(store.appendMany.bind(store));
      });

    itIf('appends several streams in one call, results in request order', async (appendMany) => {
      await store.append(`${p}b`, events(2), 'no_stream');
      const a = events(2);
      const b = events(1);
      const c = events(3);
      const results = await appendMany([
        { streamName: `${p}a`, events: a, expected: 'no_stream' },
        { streamName: `${p}b`, events: b, expected: 1 },
        { streamName: `${p}c`, events: c, expected: 'any' },
      ]);
      expect(results.map((r) => r.nextExpectedRevision)).toEqual([1, 2, 2]);
      expect(results.every((r) => !r.alreadyAppended)).toBe(true);
      expectStrictlyIncreasing(results.map((r) => r.lastGlobalPosition));
      expect((await store.readStream(`${p}a`)).map((e) => e.id)).toEqual(a.map((e) => e.id));
      expect((await store.readStream(`${p}b`)).map((e) => e.id).slice(2)).toEqual(b.map((e) => e.id));
      const log = await store.readAll({ streamPrefix: p });
      expect(log.slice(2).map((e) => e.id)).toEqual([...a, ...b, ...c].map((e) => e.id));
      expect(results[2].lastGlobalPosition).toBe(log[log.length - 1].globalPosition);
      expect(await appendMany([])).toEqual([]);
    });

    itIf('is all-or-nothing across streams', async (appendMany) => {
      await store.append(`${p}b`, events(1), 'no_stream');
      const a = events(2);
      const wrong = await rejectionOf(
        appendMany([
          { streamName: `${p}a`, events: a, expected: 'no_stream' },
          { streamName: `${p}b`, events: events(1), expected: 5 },
        ]),
      );
      expect(wrong).toBeInstanceOf(WrongExpectedRevisionError);
      expect(wrong).toMatchObject({ streamName: `${p}b`, actual: 0 });
      const stored = events(1);
      await store.append(`${p}c`, stored, 'no_stream');
      const dup = await rejectionOf(
        appendMany([
          { streamName: `${p}a`, events: a, expected: 'no_stream' },
          { streamName: `${p}d`, events: [newEvent(), stored[0]], expected: 'no_stream' },
        ]),
      );
      expect(dup).toBeInstanceOf(DuplicateEventIdError);
      await expect(
        appendMany([
          { streamName: `${p}a`, events: a, expected: 'no_stream' },
          { streamName: `${p}d`, events: [{ id: 'nope', type: 'T', data: {} }], expected: 'no_stream' },
        ]),
      ).rejects.toThrow(TypeError);
      expect(await store.readStream(`${p}a`)).toEqual([]);
      expect(await store.readStream(`${p}d`)).toEqual([]);
      expect(await store.readAll({ streamPrefix: p })).toHaveLength(2);
      // The ids of the failed batches are still free.
      expect((await appendMany([{ streamName: `${p}a`, events: a, expected: 'no_stream' }]))[0].nextExpectedRevision).toBe(1);
    });

    itIf('a stream may appear twice; a retried batch is idempotent per request', async (appendMany) => {
      const a1 = events(1);
      const a2 = events(2);
      const b = events(1);
      const batch: AppendRequest[] = [
        { streamName: `${p}a`, events: a1, expected: 'no_stream' },
        { streamName: `${p}b`, events: b, expected: 'no_stream' },
        { streamName: `${p}a`, events: a2, expected: 0 },
      ];
      const first = await appendMany(batch);
      expect(first.map((r) => r.nextExpectedRevision)).toEqual([0, 0, 2]);
      expect((await store.readStream(`${p}a`)).map((e) => e.id)).toEqual([...a1, ...a2].map((e) => e.id));
      // Retried as a whole: a1 is no longer at the end of `a` (and `a` exists), so the batch is
      // refused as stale...
      expect(await rejectionOf(appendMany(batch))).toBeInstanceOf(WrongExpectedRevisionError);
      // ...while a retry of the tail requests is idempotent, mixed with new work.
      const c = events(1);
      const retry = await appendMany([
        { streamName: `${p}b`, events: b, expected: 'no_stream' },
        { streamName: `${p}a`, events: a2, expected: 0 },
        { streamName: `${p}c`, events: c, expected: 'no_stream' },
      ]);
      expect(retry.map((r) => r.alreadyAppended)).toEqual([true, true, false]);
      expect(retry[0].lastGlobalPosition).toBe(first[1].lastGlobalPosition);
      expect(retry[1].lastGlobalPosition).toBe(first[2].lastGlobalPosition);
      // The same request twice in one batch: the second is a retry of the first.
      const d = events(1);
      const twice = await appendMany([
        { streamName: `${p}d`, events: d, expected: 'no_stream' },
        { streamName: `${p}d`, events: d, expected: 'no_stream' },
      ]);
      expect(twice.map((r) => r.alreadyAppended)).toEqual([false, true]);
      expect(twice[1].lastGlobalPosition).toBe(twice[0].lastGlobalPosition);
      expect(await store.readAll({ streamPrefix: p })).toHaveLength(6);
    });
  });
}
