/**
 * Part of the EventStore contract (see event-store.contract.ts, the entry every adapter calls):
 * subscriptions to the global log.
 * Test files only.
 */
import { EventStore, StoredEvent } from '../port';
import { ContractContext, newEvent, events, waitFor, sleep, expectStrictlyIncreasing } from './contract-support';

export function describeSubscribe(c: ContractContext): void {
  describe('subscribe', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

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
}
