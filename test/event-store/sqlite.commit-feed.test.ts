/**
 * The SQLite adapter feeds its subscriptions with the events it just committed (no read back) when
 * they follow what the subscription delivered, and reads otherwise (libs/event-store/src/internal/commit-feed.ts).
 * Whatever the mix of writers, a subscription delivers exactly what readAll returns, in order, once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SqliteEventStore, type StoredEvent } from '@metering/event-store';
import { newEvent } from '@metering/event-store/contract/event-store.contract';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-sqlite-feed-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const freshFile = () => path.join(dir, `${randomUUID()}.db`);

/** Resolves once `got` holds `n` events (or fails after 5 s). */
async function until(got: StoredEvent[], n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (got.length < n) {
    if (Date.now() > deadline) throw new Error(`timed out: ${got.length}/${n}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 30)); // nothing more may come
}

const key = (e: StoredEvent) => `${e.globalPosition}:${e.id}:${e.streamName}:${e.revision}:${e.type}:${JSON.stringify(e.data)}:${JSON.stringify(e.metadata)}:${e.recordedAt}`;

describe('SQLite commit feed', () => {
  test('group commits, nested appends (rolled back or committed) and another handle interleaved: every matching event once, in order, as readAll has it', async () => {
    const file = freshFile();
    const a = new SqliteEventStore(file);
    const b = new SqliteEventStore(file); // another process on the same file
    const all: StoredEvent[] = [];
    const spaces: StoredEvent[] = [];
    const thresholds: StoredEvent[] = [];
    const subs = [
      a.subscribe({ handler: (es) => void all.push(...es), batchSize: 7, pollIntervalMs: 10_000 }),
      a.subscribe({ streamPrefix: 'space-', handler: (es) => void spaces.push(...es), batchSize: 5, pollIntervalMs: 10_000 }),
      a.subscribe({ types: ['ThresholdCrossed'], handler: (es) => void thresholds.push(...es), batchSize: 3, pollIntervalMs: 10_000 }),
    ];
    try {
      const rev = new Map<string, number>();
      const next = (s: string) => {
        const r = rev.get(s);
        return r === undefined ? 'no_stream' : r;
      };
      const ev = (i: number) => ({ ...newEvent(), type: i % 3 === 0 ? 'ThresholdCrossed' : 'GenerationRecorded', data: { i, nested: { at: [i] } }, metadata: i % 2 ? { schema: 2 } : {} });
      let i = 0;
      for (let round = 0; round < 30; round++) {
        // A group commit of several streams on handle a.
        const streams = [`space-${round % 4}`, `space-${(round + 1) % 4}-x`, 'catalog'];
        await Promise.all(
          streams.map(async (s) => {
            const r = await a.append(s, [ev(i++), ev(i++)], next(s));
            rev.set(s, r.nextExpectedRevision);
          }),
        );
        if (round % 5 === 1) {
          // Another handle writes: a gap for a's feed.
          const s = `space-b${round}`;
          rev.set(s, (await b.append(s, [ev(i++)], 'no_stream')).nextExpectedRevision);
        }
        if (round % 7 === 2) {
          // appendSync inside the app's transaction, rolled back: nothing stored, nothing delivered.
          expect(() =>
            a.db.transaction(() => {
              a.appendSync(`space-r${round}`, [ev(i++)], 'no_stream');
              throw new Error('roll back');
            })(),
          ).toThrow('roll back');
        }
        if (round % 7 === 4) {
          // appendSync inside the app's transaction that commits: delivered (read, not fed).
          const s = `space-c${round}`;
          a.db.transaction(() => rev.set(s, a.appendSync(s, [ev(i++)], 'no_stream').nextExpectedRevision))();
        }
        if (round % 3 === 0) await new Promise((r) => setTimeout(r, 2)); // let the subscriptions run now and then
      }
      const stored = await a.readAll();
      await until(all, stored.length);
      await until(spaces, stored.filter((e) => e.streamName.startsWith('space-')).length);
      await until(thresholds, stored.filter((e) => e.type === 'ThresholdCrossed').length);
      expect(all.map(key)).toEqual(stored.map(key));
      expect(spaces.map(key)).toEqual(stored.filter((e) => e.streamName.startsWith('space-')).map(key));
      expect(thresholds.map(key)).toEqual(stored.filter((e) => e.type === 'ThresholdCrossed').map(key));
    } finally {
      await Promise.all(subs.map((s) => s.stop()));
      await a.close();
      await b.close();
    }
  });

  test('a subscription that is at the head gets the next group commits without reading them back', async () => {
    const store = new SqliteEventStore(freshFile());
    const got: StoredEvent[] = [];
    const reads = jest.spyOn(store as unknown as { readCovered: (o: unknown) => unknown }, 'readCovered');
    const sub = store.subscribe({ handler: (es) => void got.push(...es), batchSize: 100, pollIntervalMs: 10_000 });
    try {
      await store.append('space-a', [newEvent()], 'no_stream');
      await until(got, 1);
      const before = reads.mock.calls.length;
      for (let r = 1; r <= 10; r++) await store.append('space-a', [newEvent(), newEvent()], r === 1 ? 0 : 2 * r - 2);
      await until(got, 21);
      expect(got.map((e) => e.globalPosition)).toEqual((await store.readAll()).map((e) => e.globalPosition));
      // Each commit is fed; reads only find the feed empty (at most one per wake-up), never the events themselves.
      const readEvents = reads.mock.results.slice(before).flatMap((r) => (r.value as { events: StoredEvent[] }).events);
      expect(readEvents).toEqual([]);
    } finally {
      await sub.stop();
      await store.close();
    }
  });
});
