import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  SqliteEventStore,
  StoreUnavailableError,
  WrongExpectedRevisionError,
  createEventStore,
} from '@metering/event-store';
import { describeEventStoreContract, newEvent } from '@metering/event-store/contract/event-store.contract';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-sqlite-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const freshFile = () => path.join(dir, `${randomUUID()}.db`);

describeEventStoreContract('sqlite', async (o) => {
  const store = new SqliteEventStore(freshFile(), { maxAppendBytes: o?.maxAppendBytes });
  return { store, cleanup: () => store.close() };
});

/** A store and another connection on one fresh file (another process's writer); both closed after `fn`. */
async function withOtherWriter(busyTimeoutMs: number, fn: (store: SqliteEventStore, other: Database.Database) => Promise<void>): Promise<void> {
  const file = freshFile();
  const store = new SqliteEventStore(file, { busyTimeoutMs });
  const other = new Database(file);
  try {
    await fn(store, other);
  } finally {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    await store.close();
  }
}

describe('SqliteEventStore specifics', () => {
  test('opens the file in WAL mode with synchronous=NORMAL and a busy timeout', async () => {
    const store = new SqliteEventStore(freshFile());
    try {
      expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(store.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
      expect(store.db.pragma('busy_timeout', { simple: true })).toBe(5000);
    } finally {
      await store.close();
    }
    const full = new SqliteEventStore(freshFile(), { synchronous: 'FULL', busyTimeoutMs: 100 });
    expect(full.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(full.db.pragma('busy_timeout', { simple: true })).toBe(100);
    await full.close();
  });

  test('shares an existing handle; appendSync inside the app transaction commits or rolls back with it', async () => {
    const db = new Database(freshFile());
    const store = new SqliteEventStore(db);
    expect(store.db).toBe(db);
    db.exec('CREATE TABLE rm_counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)');
    const bump = db.prepare('INSERT INTO rm_counts (stream, n) VALUES (?, 1) ON CONFLICT(stream) DO UPDATE SET n = n + 1');
    const project = db.transaction((stream: string, fail: boolean) => {
      store.appendSync(stream, [newEvent()], 'any');
      bump.run(stream);
      if (fail) throw new Error('read model failed');
    });
    project('s', false);
    expect(() => project('s', true)).toThrow('read model failed');
    expect(await store.readStream('s')).toHaveLength(1);
    expect(db.prepare('SELECT n FROM rm_counts').pluck().get()).toBe(1);
    await store.close();
    // The store does not close a handle it did not open.
    expect(db.open).toBe(true);
    db.close();
  });

  test('two handles on one file see each other and are checked against the stored revision', async () => {
    const file = freshFile();
    const a = new SqliteEventStore(file);
    const b = new SqliteEventStore(file);
    try {
      await a.append('s', [newEvent()], 'no_stream');
      expect(await b.streamRevision('s')).toBe(0);
      await b.append('s', [newEvent()], 0);
      await expect(a.append('s', [newEvent()], 0)).rejects.toMatchObject({ actual: 1 });
      await expect(a.append('s', [newEvent()], 0)).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      const r = await a.append('s', [newEvent()], 1);
      expect(r.nextExpectedRevision).toBe(2);
      expect((await b.readAll()).map((e) => e.globalPosition)).toEqual([1n, 2n, 3n]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('appends requested together are group-committed in one transaction; a conflict fails that append alone', async () => {
    const store = new SqliteEventStore(freshFile());
    try {
      await store.append('a', [newEvent()], 'no_stream');
      const results = await Promise.allSettled([
        store.append('a', [newEvent()], 0), // ok: revision 1
        store.append('a', [newEvent()], 0), // conflict: a is at 1 now
        store.append('b', [newEvent(), newEvent()], 'no_stream'), // ok
        store.append('c', [{ id: 'not-a-uuid', type: 'X', data: {} }], 'no_stream'), // bad request
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedRevisionError);
      const positions = (await store.readAll()).map((e) => [e.streamName, e.revision, e.globalPosition]);
      expect(positions).toEqual([
        ['a', 0, 1n],
        ['a', 1, 2n],
        ['b', 0, 3n],
        ['b', 1, 4n],
      ]);
      // Nothing is pending afterwards and an append outside a group still works alone.
      expect((await store.append('b', [newEvent()], 1)).nextExpectedRevision).toBe(2);
    } finally {
      await store.close();
    }
  });

  test('an append of a group that fails after it began writing fails alone: the group is redone with a savepoint per append', async () => {
    const store = new SqliteEventStore(freshFile());
    try {
      // Passes every check of the store, then fails on its second row (a trigger): an I/O-like failure mid-append.
      store.db.exec(`CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'Boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`);
      await store.append('a', [newEvent()], 'no_stream');
      const results = await Promise.allSettled([
        store.append('a', [newEvent()], 0), // ok: revision 1
        store.append('x', [newEvent(), newEvent('Boom')], 'no_stream'), // fails after its first row
        store.append('a', [newEvent()], 0), // conflict: a is at 1 now
        store.append('b', [newEvent(), newEvent()], 'no_stream'), // ok
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect(String((results[1] as PromiseRejectedResult).reason)).toContain('boom');
      expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedRevisionError);
      const positions = (await store.readAll()).map((e) => [e.streamName, e.revision]);
      expect(positions).toEqual([
        ['a', 0],
        ['a', 1],
        ['b', 0],
        ['b', 1],
      ]);
      expect(await store.streamRevision('x')).toBe(-1);
      expect((await store.append('x', [newEvent()], 'no_stream')).nextExpectedRevision).toBe(0);
    } finally {
      await store.close();
    }
  });

  test('a write lock held elsewhere beyond busy_timeout is StoreUnavailableError and writes nothing', () =>
    withOtherWriter(50, async (store, other) => {
      other.exec('BEGIN IMMEDIATE');
      const err = await store.append('s', [newEvent()], 'no_stream').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      other.exec('ROLLBACK');
      expect(await store.readStream('s')).toEqual([]);
      expect((await store.append('s', [newEvent()], 'no_stream')).nextExpectedRevision).toBe(0);
    }));

  test('an append waits for a write lock held elsewhere without holding the event loop, then commits', () =>
    withOtherWriter(5000, async (store, other) => {
      await store.append('s', [newEvent()], 'no_stream');
      other.exec('BEGIN IMMEDIATE'); // another process's write transaction
      const waiting = [store.append('s', [newEvent()], 0), store.append('t', [newEvent()], 'no_stream'), store.append('s', [newEvent()], 5)];
      const settled = waiting.map((p) => p.then(() => 'ok', (e: unknown) => e));
      // The event loop keeps running while the appends wait: timers fire, and nothing is settled.
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      await new Promise((r) => setTimeout(r, 300));
      clearInterval(ticker);
      expect(ticks).toBeGreaterThan(10);
      const early = await Promise.race([Promise.all(settled).then(() => 'settled'), new Promise((r) => setTimeout(() => r('pending'), 0))]);
      expect(early).toBe('pending');
      // Appends made while the lock is held join the waiting group.
      const later = store.append('u', [newEvent()], 'no_stream');
      other.exec('COMMIT');
      const [a, b, c] = await Promise.all(settled);
      expect([a, b]).toEqual(['ok', 'ok']);
      expect(c).toBeInstanceOf(WrongExpectedRevisionError); // its own check, after the wait
      expect((await later).nextExpectedRevision).toBe(0);
      expect((await store.readStream('s')).length).toBe(2);
      expect((await store.readStream('t')).length).toBe(1);
      // The handle's own busy_timeout is back for its other statements.
      expect(store.db.pragma('busy_timeout', { simple: true })).toBe(5000);
    }));

  test('appends that wait past busyTimeoutMs fail alone; one made later still gets its own wait', () =>
    withOtherWriter(200, async (store, other) => {
      other.exec('BEGIN IMMEDIATE');
      const t0 = performance.now();
      const first = store.append('s', [newEvent()], 'no_stream').then(() => 'ok', (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 120));
      const second = store.append('t', [newEvent()], 'no_stream').then(() => 'ok', (e: unknown) => e);
      const err = await first;
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
      other.exec('COMMIT');
      expect(await second).toBe('ok');
      expect(await store.readStream('s')).toEqual([]);
      expect((await store.readStream('t')).length).toBe(1);
    }));

  test('events survive reopening, and positions are never reused', async () => {
    const file = freshFile();
    const first = new SqliteEventStore(file);
    await first.append('s', [newEvent(), newEvent()], 'no_stream');
    await first.close();
    const again = await createEventStore({ kind: 'sqlite', file });
    try {
      expect(again).toBeInstanceOf(SqliteEventStore);
      expect(await again.streamRevision('s')).toBe(1);
      expect(await again.headPosition()).toBe(2n);
      const r = await again.append('s', [newEvent()], 1);
      expect(r.lastGlobalPosition).toBe(3n);
    } finally {
      await again.close();
    }
  });
});
