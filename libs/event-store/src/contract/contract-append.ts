/**
 * Part of the EventStore contract (see event-store.contract.ts, the entry every adapter calls):
 * appends to one stream, expected revisions, idempotent retries and duplicate ids.
 * Test files only.
 */
import { DuplicateEventIdError, EventStore, NewEvent, WrongExpectedRevisionError } from '../port';
import { ContractContext, newEvent, events, rejectionOf, expectStrictlyIncreasing } from './contract-support';

export function describeAppendAndRead(c: ContractContext): void {
  describe('append and read one stream', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('appends to a new stream with no_stream and reads it back in order', async () => {
      const s = `${p}space-1`;
      const evs = events(3);
      const r = await store.append(s, evs, 'no_stream');
      expect(r.nextExpectedRevision).toBe(2);
      expect(r.alreadyAppended).toBe(false);
      expect(typeof r.lastGlobalPosition).toBe('bigint');

      const read = await store.readStream(s);
      expect(read.map((e) => e.id)).toEqual(evs.map((e) => e.id));
      expect(read.map((e) => e.revision)).toEqual([0, 1, 2]);
      expect(read.every((e) => e.streamName === s && e.type === 'Tested')).toBe(true);
      expect(read.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
      expect(read[2].globalPosition).toBe(r.lastGlobalPosition);
      expect(Number.isNaN(Date.parse(read[0].recordedAt))).toBe(false);
      expect(await store.streamRevision(s)).toBe(2);
    });

    test('no_stream on an existing stream fails with the actual revision', async () => {
      const s = `${p}s`;
      await store.append(s, events(2), 'no_stream');
      const err = await rejectionOf(store.append(s, events(1), 'no_stream'));
      expect(err).toBeInstanceOf(WrongExpectedRevisionError);
      expect(err).toMatchObject({ streamName: s, expected: 'no_stream', actual: 1 });
    });

    test('a wrong expected revision fails with WrongExpectedRevisionError carrying the actual one, writing nothing', async () => {
      const s = `${p}s`;
      await store.append(s, events(3), 'no_stream');
      for (const expected of [0, 1, 3, 7]) {
        const err = await rejectionOf(store.append(s, events(2), expected));
        expect(err).toBeInstanceOf(WrongExpectedRevisionError);
        expect(err).toMatchObject({ streamName: s, expected, actual: 2 });
      }
      const missing = await rejectionOf(store.append(`${p}missing`, events(1), 0));
      expect(missing).toBeInstanceOf(WrongExpectedRevisionError);
      expect(missing).toMatchObject({ actual: -1 });
      expect(await store.readStream(s)).toHaveLength(3);
      expect(await store.readStream(`${p}missing`)).toEqual([]);
    });

    test('the exact expected revision appends after the last event', async () => {
      const s = `${p}s`;
      const r1 = await store.append(s, events(2), 'no_stream');
      const r2 = await store.append(s, events(1), r1.nextExpectedRevision);
      expect(r2.nextExpectedRevision).toBe(2);
      expect(r2.lastGlobalPosition > r1.lastGlobalPosition).toBe(true);
      const r3 = await store.append(s, events(2), 'any');
      expect(r3.nextExpectedRevision).toBe(4);
      const r4 = await store.append(`${p}fresh`, events(1), 'any');
      expect(r4.nextExpectedRevision).toBe(0);
    });

    test('concurrent writers with the same expected revision: exactly one wins', async () => {
      const s = `${p}s`;
      await store.append(s, events(1), 'no_stream');
      const contenders = Array.from({ length: 8 }, (_, i) => [newEvent('Contender', { i })]);
      const outcomes = await Promise.allSettled(contenders.map((evs) => store.append(s, evs, 0)));
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(7);
      for (const l of lost) {
        expect(l.reason).toBeInstanceOf(WrongExpectedRevisionError);
        expect(l.reason).toMatchObject({ expected: 0, actual: 1 });
      }
      const read = await store.readStream(s);
      expect(read).toHaveLength(2);
      const winner = outcomes.findIndex((o) => o.status === 'fulfilled');
      expect(read[1].id).toBe(contenders[winner][0].id);
    });

    test('concurrent no_stream creators: exactly one wins', async () => {
      const s = `${p}s`;
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => store.append(s, events(2), 'no_stream')));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(WrongExpectedRevisionError);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    test('order within a stream is kept across many appends', async () => {
      const s = `${p}s`;
      const all: NewEvent[] = [];
      let expected: number | 'no_stream' = 'no_stream';
      for (let i = 0; i < 10; i++) {
        const batch = events((i % 3) + 1);
        all.push(...batch);
        const r = await store.append(s, batch, expected);
        expected = r.nextExpectedRevision;
      }
      const read = await store.readStream(s);
      expect(read.map((e) => e.id)).toEqual(all.map((e) => e.id));
      expect(read.map((e) => e.revision)).toEqual(all.map((_, i) => i));
      expectStrictlyIncreasing(read.map((e) => e.globalPosition));
    });

    test('readStream honours fromRevision and maxCount; an unknown stream reads as []', async () => {
      const s = `${p}s`;
      const evs = events(6);
      await store.append(s, evs, 'no_stream');
      expect((await store.readStream(s, { fromRevision: 2 })).map((e) => e.revision)).toEqual([2, 3, 4, 5]);
      expect((await store.readStream(s, { fromRevision: 1, maxCount: 2 })).map((e) => e.id)).toEqual([evs[1].id, evs[2].id]);
      expect((await store.readStream(s, { maxCount: 1 })).map((e) => e.revision)).toEqual([0]);
      expect(await store.readStream(s, { fromRevision: 6 })).toEqual([]);
      expect(await store.readStream(s, { maxCount: 0 })).toEqual([]);
      expect(await store.readStream(`${p}nope`)).toEqual([]);
      expect(await store.streamRevision(`${p}nope`)).toBe(-1);
    });

    test('an empty append writes nothing and returns the current revision (still checking it)', async () => {
      const s = `${p}s`;
      const none = await store.append(s, [], 'no_stream');
      expect(none).toMatchObject({ nextExpectedRevision: -1, alreadyAppended: false });
      const r = await store.append(s, events(2), 'no_stream');
      const empty = await store.append(s, [], 1);
      expect(empty).toEqual({ nextExpectedRevision: 1, lastGlobalPosition: r.lastGlobalPosition, alreadyAppended: false });
      expect(await store.append(s, [], 'any')).toMatchObject({ nextExpectedRevision: 1 });
      expect(await rejectionOf(store.append(s, [], 0))).toBeInstanceOf(WrongExpectedRevisionError);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    test('invalid input is rejected before anything is written', async () => {
      const s = `${p}s`;
      await expect(store.append(s, [{ id: 'not-a-uuid', type: 'T', data: {} }], 'no_stream')).rejects.toThrow(TypeError);
      await expect(store.append(s, [newEvent('T', { n: BigInt(1) } as Record<string, unknown>)], 'no_stream')).rejects.toThrow(TypeError);
      await expect(store.append(s, [{ ...newEvent(), type: '' }], 'no_stream')).rejects.toThrow(TypeError);
      await expect(store.append('', events(1), 'no_stream')).rejects.toThrow(TypeError);
      await expect(store.append(s, events(1), -1)).rejects.toThrow(TypeError);
      await expect(store.append(s, events(1), 1.5)).rejects.toThrow(TypeError);
      const dup = newEvent();
      await expect(store.append(s, [dup, { ...dup }], 'no_stream')).rejects.toBeInstanceOf(DuplicateEventIdError);
      expect(await store.readStream(s)).toEqual([]);
      expect(await store.streamRevision(s)).toBe(-1);
    });
  });
}

export function describeIdempotency(c: ContractContext): void {
  const { uniqueIdsAcrossStreams } = c;
  describe('idempotency and duplicate ids', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    test('re-appending the same event ids (retry after a lost ack) reports alreadyAppended and writes nothing', async () => {
      const s = `${p}s`;
      await store.append(s, events(1), 'no_stream');
      const evs = events(3);
      const first = await store.append(s, evs, 0);
      // Same request again: the expected revision (0) is now stale, the retry must still succeed.
      const retry = await store.append(s, evs, 0);
      expect(retry).toEqual({ nextExpectedRevision: 3, lastGlobalPosition: first.lastGlobalPosition, alreadyAppended: true });
      // Whatever the expected revision says: the ids decide.
      expect(await store.append(s, evs, 'any')).toMatchObject({ alreadyAppended: true, nextExpectedRevision: 3 });
      expect(await store.append(s, evs, 'no_stream')).toMatchObject({ alreadyAppended: true });
      expect(await store.append(s, evs, 3)).toMatchObject({ alreadyAppended: true });
      // Upper-case spelling of the same ids is the same event.
      expect(await store.append(s, evs.map((e) => ({ ...e, id: e.id.toUpperCase() })), 0)).toMatchObject({ alreadyAppended: true });
      expect(await store.readStream(s)).toHaveLength(4);
      expect(await store.streamRevision(s)).toBe(3);
    });

    test('a retry of a single event appended first is idempotent too', async () => {
      const s = `${p}s`;
      const e = events(1);
      const first = await store.append(s, e, 'no_stream');
      expect(await store.append(s, e, 'no_stream')).toEqual({ ...first, alreadyAppended: true });
      expect(await store.readStream(s)).toHaveLength(1);
    });

    test('an id reused in a different append of the same stream is a DuplicateEventIdError', async () => {
      const s = `${p}s`;
      const a = events(2);
      await store.append(s, a, 'no_stream');
      await store.append(s, events(1), 1);
      // a is stored, but no longer at the end of the stream: not a retry.
      const notAtEnd = await rejectionOf(store.append(s, a, 2));
      expect(notAtEnd).toBeInstanceOf(DuplicateEventIdError);
      expect(notAtEnd).toMatchObject({ streamName: s, eventId: a[0].id });
      // Only part of the append is stored.
      const partial = await rejectionOf(store.append(s, [newEvent(), a[1]], 2));
      expect(partial).toBeInstanceOf(DuplicateEventIdError);
      expect(partial).toMatchObject({ eventId: a[1].id });
      // Same ids, different order.
      const b = events(2);
      await store.append(s, b, 2);
      expect(await rejectionOf(store.append(s, [b[1], b[0]], 4))).toBeInstanceOf(DuplicateEventIdError);
      // A subset of the tail (not the whole append) is not the same append either.
      const c = events(2);
      await store.append(s, c, 4);
      expect(await store.append(s, [c[1]], 5)).toMatchObject({ alreadyAppended: true });
      // Not a retry, and the writer's view is stale (the stream is at 6): reload and decide again.
      expect(await rejectionOf(store.append(s, [c[0]], 5))).toBeInstanceOf(WrongExpectedRevisionError);
      // With the right revision, reusing a stored id is a duplicate.
      expect(await rejectionOf(store.append(s, [c[0]], 6))).toBeInstanceOf(DuplicateEventIdError);
      expect(await store.readStream(s)).toHaveLength(7);
    });

    (uniqueIdsAcrossStreams ? test : test.skip)('an id already stored in another stream is a DuplicateEventIdError', async () => {
      const a = events(1);
      await store.append(`${p}a`, a, 'no_stream');
      const err = await rejectionOf(store.append(`${p}b`, a, 'no_stream'));
      expect(err).toBeInstanceOf(DuplicateEventIdError);
      expect(err).toMatchObject({ streamName: `${p}b`, eventId: a[0].id });
      expect(await store.readStream(`${p}b`)).toEqual([]);
    });

    test('a failing append writes nothing (atomicity)', async () => {
      const s = `${p}s`;
      const stored = events(1);
      await store.append(s, stored, 'no_stream');
      const fresh = newEvent();
      // The second event is a duplicate: the first must not be written either.
      expect(await rejectionOf(store.append(s, [fresh, stored[0]], 0))).toBeInstanceOf(DuplicateEventIdError);
      // Wrong revision with several events: none written.
      expect(await rejectionOf(store.append(s, [newEvent(), newEvent(), newEvent()], 5))).toBeInstanceOf(WrongExpectedRevisionError);
      expect(await store.readStream(s)).toHaveLength(1);
      // The id of the failed append is still free.
      expect(await store.append(s, [fresh], 0)).toMatchObject({ nextExpectedRevision: 1, alreadyAppended: false });
    });
  });
}
