/**
 * The contract suite on a real SQLite store whose positions are mapped to sparse, gapped values
 * (test/support/sparse-positions-store.ts): proves without a KurrentDB server that neither the
 * adapters' shared code nor the suite assumes dense positions.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SqliteEventStore } from '@metering/event-store';
import { describeEventStoreContract, newEvent } from '@metering/event-store/contract/event-store.contract';
import { InvalidPositionError, SparsePositionsStore, fromSparse, toSparse } from '../support/sparse-positions-store';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-sparse-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const freshFile = () => path.join(dir, `${randomUUID()}.db`);

describeEventStoreContract('sqlite with sparse positions', async (o) => {
  const store = new SparsePositionsStore(new SqliteEventStore(freshFile(), { maxAppendBytes: o?.maxAppendBytes }));
  return { store, cleanup: () => store.close() };
});

describe('the sparse mapping itself', () => {
  test('is strictly increasing with uneven gaps, and only handed-out values map back', () => {
    const xs = [1n, 2n, 3n, 7n, 8n, 100n].map(toSparse);
    for (let i = 1; i < xs.length; i++) expect(xs[i] > xs[i - 1]).toBe(true);
    expect(toSparse(3n) - toSparse(2n)).not.toBe(toSparse(7n) - toSparse(6n));
    for (const p of [0n, 1n, 5n, 123456n]) expect(fromSparse(toSparse(p))).toBe(p);
    expect(fromSparse(toSparse(5n) + 1n)).toBeNull();
  });

  test('a position the store never handed out is refused, like KurrentDB does', async () => {
    const store = new SparsePositionsStore(new SqliteEventStore(freshFile()));
    try {
      const r = await store.append('s-1', [newEvent(), newEvent()], 'no_stream');
      await expect(store.readAll({ after: r.lastGlobalPosition - 1n })).rejects.toBeInstanceOf(InvalidPositionError);
      expect(await store.readAll({ after: r.lastGlobalPosition })).toEqual([]);
      expect(await store.storeId()).toMatch(/^sparse:sqlite:/);
    } finally {
      await store.close();
    }
  });
});
