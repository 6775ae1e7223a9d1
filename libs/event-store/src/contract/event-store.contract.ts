/**
 * The contract every EventStore adapter must pass. Used from test files only (it registers jest
 * tests); never import it from production code.
 *
 * Each test uses streams under its own random prefix, so the suite also runs against a shared
 * store (a KurrentDB server, one PostgreSQL schema per file) and never depends on other tests'
 * events. The factory is called once per test; `cleanup` runs after it.
 */
import { randomUUID } from 'node:crypto';
import { chunkByBytes } from '../internal/append-budget';
import {
  AppendRequest,
  AppendTooLargeError,
  DuplicateEventIdError,
  EventStore,
  NewEvent,
  StoredEvent,
  WrongExpectedRevisionError,
} from '../port';

export interface ContractStore {
  store: EventStore;
  cleanup(): Promise<void>;
}

/** What a test may ask of the factory (each adapter passes it to its constructor). */
export interface ContractStoreOptions {
  /** The adapter's append byte budget (`maxAppendBytes`). */
  maxAppendBytes?: number;
}

export interface ContractOptions {
  /**
   * Whether an id already used in ANOTHER stream is rejected (DuplicateEventIdError). True for
   * SQLite and PostgreSQL (global unique index); KurrentDB keeps no global id index.
   */
  uniqueIdsAcrossStreams?: boolean;
  /** Whether the adapter offers the optional `appendMany` (default true); if not, its tests are skipped. */
  appendMany?: boolean;
  /** Whether the adapter offers the optional `readEventsById` (default true); if not, its test is skipped. */
  readEventsById?: boolean;
  /** When set, every test is registered as skipped (reported SKIPPED, never passed). */
  skip?: boolean;
  /**
   * Whether appends requested together (same turn of the event loop) are group-committed and
   * applied in call order (default true: SQLite, PostgreSQL). The tests whose outcome depends on
   * that order (two appends to one stream in one group, positions in call order) run only then;
   * the order-independent ones run on every adapter.
   */
  groupCommit?: boolean;
}

let prefixCounter = 0;
/** A stream-name prefix no other test uses. */
function uniquePrefix(): string {
  return `ct${Date.now().toString(36)}${(prefixCounter++).toString(36)}${randomUUID().slice(0, 6)}-`;
}

export function newEvent(type = 'Tested', data: Record<string, unknown> = {}, metadata?: Record<string, unknown>): NewEvent {
  return { id: randomUUID(), type, data, ...(metadata ? { metadata } : {}) };
}

function events(n: number, type = 'Tested'): NewEvent[] {
  return Array.from({ length: n }, (_, i) => newEvent(type, { i }));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, it resolved');
}

function expectStrictlyIncreasing(positions: bigint[]): void {
  for (let i = 1; i < positions.length; i++) {
    if (!(positions[i] > positions[i - 1])) {
      throw new Error(`global positions not strictly increasing at ${i}: ${positions[i - 1]} then ${positions[i]}`);
    }
  }
}

export function describeEventStoreContract(
  name: string,
  factory: (storeOptions?: ContractStoreOptions) => Promise<ContractStore>,
  options: ContractOptions = {},
): void {
  const uniqueIdsAcrossStreams = options.uniqueIdsAcrossStreams ?? true;
  const offersAppendMany = options.appendMany ?? true;
  const offersReadById = options.readEventsById ?? true;
  const groupCommit = options.groupCommit ?? true;
  const describeFn = options.skip ? describe.skip : describe;

  describeFn(`EventStore contract: ${name}`, () => {
    let ctx: ContractStore | undefined;
    let store: EventStore;
    let p: string;

    beforeEach(async () => {
      ctx = await factory();
      store = ctx.store;
      p = uniquePrefix();
    });
    afterEach(async () => {
      await ctx?.cleanup();
      ctx = undefined;
    });

    describe('append and read one stream', () => {
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

    describe('idempotency and duplicate ids', () => {
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

    describe('concurrent appends (group commit)', () => {
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

    describe('the global log', () => {
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

    describe('snapshots', () => {
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

    describe('cold starts of many streams (readColdStarts, where offered)', () => {
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

    (offersReadById ? describe : describe.skip)('events by id', () => {
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

    describe('data and metadata', () => {
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

    describe('subscribe', () => {
      test('delivers existing then new events, in order, exactly once; stop() ends delivery', async () => {
        const s1 = `${p}space-1`;
        const s2 = `${p}space-2`;
        const before = [...events(3)];
        await store.append(s1, before, 'no_stream');
        await store.append(`${p}other`, events(2), 'no_stream');
        const got: StoredEvent[] = [];
        const pages: number[] = [];
        const errors: unknown[] = [];
        const sub = store.subscribe({
          streamPrefix: `${p}space-`,
          pollIntervalMs: 20,
          batchSize: 2,
          handler: async (page) => {
            pages.push(page.length);
            got.push(...page);
          },
          onError: (e) => errors.push(e),
        });
        try {
          await waitFor('existing events', () => got.length >= 3);
          const after1 = events(2);
          const after2 = events(3);
          await store.append(s2, after1, 'no_stream');
          store.notify?.();
          await store.append(s1, after2, 2);
          store.notify?.();
          await waitFor('new events', () => got.length >= 8);
          await sleep(100);
          expect(got.map((e) => e.id)).toEqual([...before, ...after1, ...after2].map((e) => e.id));
          expectStrictlyIncreasing(got.map((e) => e.globalPosition));
          expect(Math.max(...pages)).toBeLessThanOrEqual(2);
        } finally {
          await sub.stop();
        }
        const count = got.length;
        await store.append(s1, events(2), 5);
        store.notify?.();
        await sleep(150);
        expect(got.length).toBe(count);
        expect(errors).toEqual([]);
      });

      test('starts strictly after the given checkpoint and honours the types filter', async () => {
        const s = `${p}space-1`;
        const first = await store.append(s, [newEvent('A'), newEvent('B')], 'no_stream');
        const later = [newEvent('A'), newEvent('C'), newEvent('B')];
        await store.append(s, later, 1);
        const got: StoredEvent[] = [];
        const sub = store.subscribe({
          after: first.lastGlobalPosition,
          streamPrefix: p,
          types: ['A', 'B'],
          pollIntervalMs: 20,
          handler: (page) => void got.push(...page),
        });
        try {
          await waitFor('events after the checkpoint', () => got.length >= 2);
          await sleep(100);
          expect(got.map((e) => e.id)).toEqual([later[0].id, later[2].id]);
        } finally {
          await sub.stop();
        }
      });

      test('stop() resolves only after the in-flight handler finished, and no call follows', async () => {
        const s = `${p}space-1`;
        await store.append(s, events(1), 'no_stream');
        let entered = false;
        let finished = false;
        let calls = 0;
        const sub = store.subscribe({
          streamPrefix: p,
          pollIntervalMs: 20,
          handler: async () => {
            calls++;
            entered = true;
            await sleep(300);
            finished = true;
          },
        });
        await waitFor('handler entered', () => entered);
        await store.append(s, events(1), 0);
        store.notify?.();
        await sub.stop();
        expect(finished).toBe(true);
        expect(calls).toBe(1);
        await sleep(100);
        expect(calls).toBe(1);
      });

      test('a throwing handler stops the subscription and reaches onError', async () => {
        const s = `${p}space-1`;
        await store.append(s, events(2), 'no_stream');
        const boom = new Error('projection failed');
        const errors: unknown[] = [];
        let calls = 0;
        const sub = store.subscribe({
          streamPrefix: p,
          pollIntervalMs: 20,
          batchSize: 1,
          handler: () => {
            calls++;
            throw boom;
          },
          onError: (e) => errors.push(e),
        });
        try {
          await waitFor('onError', () => errors.length > 0);
          await store.append(s, events(1), 1);
          store.notify?.();
          await sleep(150);
          expect(errors).toEqual([boom]);
          expect(calls).toBe(1);
        } finally {
          await sub.stop();
        }
      });

      test('notify() wakes a subscription that polls slowly', async () => {
        const got: StoredEvent[] = [];
        const sub = store.subscribe({ streamPrefix: p, pollIntervalMs: 60_000, handler: (page) => void got.push(...page) });
        try {
          await sleep(100); // the first (empty) read is done, the subscription now sleeps 60 s
          const evs = events(1);
          await store.append(`${p}s`, evs, 'no_stream');
          store.notify?.();
          await waitFor('woken delivery', () => got.length === 1, 5_000);
          expect(got[0].id).toBe(evs[0].id);
        } finally {
          await sub.stop();
        }
      });
    });

    describe('positions are opaque tokens', () => {
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

    describe('append byte budget (maxAppendBytes)', () => {
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

    (offersAppendMany ? describe : describe.skip)('appendMany', () => {
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
  });
}
