/**
 * The SQLite adapter checkpoints its WAL every SQLITE_WAL_AUTOCHECKPOINT_PAGES pages (64 MiB of
 * 4 KiB pages) instead of SQLite's 1000, and truncates the WAL file back to that size after a
 * checkpoint: the WAL of a busy store is bounded, and what it holds is read back exactly.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SQLITE_WAL_AUTOCHECKPOINT_PAGES, SqliteEventStore } from '@metering/event-store';
import { newEvent } from '@metering/event-store/contract/event-store.contract';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-sqlite-ckpt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const freshFile = () => path.join(dir, `${randomUUID()}.db`);

describe('SQLite WAL checkpoints', () => {
  test('default: a checkpoint every 16,384 WAL pages, the WAL file truncated back to 64 MiB after one', async () => {
    const store = new SqliteEventStore(freshFile());
    try {
      expect(SQLITE_WAL_AUTOCHECKPOINT_PAGES).toBe(16_384);
      expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(16_384);
      expect(store.db.pragma('journal_size_limit', { simple: true })).toBe(16_384 * 4096);
    } finally {
      await store.close();
    }
  });

  test('a small interval keeps the WAL file within its limit while every event stays readable', async () => {
    const file = freshFile();
    const store = new SqliteEventStore(file, { walAutocheckpointPages: 8 });
    try {
      expect(store.db.pragma('journal_size_limit', { simple: true })).toBe(8 * 4096);
      const body = 'x'.repeat(3000); // about a page per event
      for (let i = 0; i < 200; i++) await store.append(`space-${i % 7}`, [newEvent('Used', { i, body })], 'any');
      // Checkpoints ran and truncated the WAL back (SQLite truncates to the limit, not below it).
      expect(fs.statSync(`${file}-wal`).size).toBeLessThanOrEqual(64 * 4096);
      const all = await store.readAll({ maxCount: 1000 });
      expect(all.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    } finally {
      await store.close();
    }
  });

  test('an interval that is not a whole number >= 0 is refused by name', () => {
    expect(() => new SqliteEventStore(freshFile(), { walAutocheckpointPages: -1 })).toThrow(/walAutocheckpointPages must be an integer >= 0/);
    expect(() => new SqliteEventStore(freshFile(), { walAutocheckpointPages: 1.5 })).toThrow(/walAutocheckpointPages must be an integer >= 0/);
  });
});
