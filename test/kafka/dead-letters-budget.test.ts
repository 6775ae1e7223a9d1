/**
 * Dead letters under an append byte budget (KurrentDB's MaxAppendSize): a partition batch of
 * letters larger than one append is chunked, each letter recorded once even when the batch is
 * recorded again, and a single letter over the budget is recorded cut (size and digest kept)
 * instead of stalling the partition forever. Real SQLite store with a tiny budget.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteEventStore } from '@metering/event-store';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { DeadLetterRecorder, type DeadLetterData, deadLetterStream } from '../../apps/metering/src/kafka/dead-letters';
import { redrive } from '../../apps/metering/src/admin/dead-letter-ops';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dl-budget-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const BUDGET = 4000;
const msg = (offset: number, bytes: number) => ({
  key: 'acme',
  value: Buffer.alloc(bytes, offset % 251),
  headers: { h: 'v' },
  offset: String(offset),
  timestamp: '1700000000000',
});
const errors = [{ field: 'feature', rule: 'known_feature', message: 'unknown feature' }];

test('a batch over the budget is chunked; recording it again adds nothing', async () => {
  const store = new SqliteEventStore(path.join(dir, `${randomUUID()}.db`), { maxAppendBytes: BUDGET });
  try {
    const rec = new DeadLetterRecorder(store, systemIds, () => Date.now());
    const letters = Array.from({ length: 10 }, (_, i) => rec.letter('t', 0, msg(i, 900), errors));
    await rec.record(letters);
    const stored = await store.readStream(deadLetterStream('t', 0));
    expect(stored.map((e) => e.id)).toEqual(letters.map((l) => l.deadLetterId));
    // Several appends (one per chunk): more than one distinct commit was needed.
    expect(new Set(stored.map((e) => e.globalPosition)).size).toBe(10);
    // A fresh recorder (a restart) given the same batch plus one more writes only the new one.
    const again = new DeadLetterRecorder(store, systemIds, () => Date.now());
    await again.record([...letters, again.letter('t', 0, msg(10, 900), errors)]);
    expect(await store.readStream(deadLetterStream('t', 0))).toHaveLength(11);
  } finally {
    await store.close();
  }
});

test('one letter alone over the budget is recorded cut, with its size and digest, and is not re-driven', async () => {
  const store = new SqliteEventStore(path.join(dir, `${randomUUID()}.db`), { maxAppendBytes: BUDGET });
  try {
    const rec = new DeadLetterRecorder(store, systemIds, () => Date.now());
    const big = msg(1, 20_000);
    await rec.record([rec.letter('t', 3, big, errors)]);
    const [e] = await store.readStream(deadLetterStream('t', 3));
    const d = e.data as unknown as DeadLetterData;
    expect(d.truncated).toEqual({ valueBytes: 20_000, sha256: createHash('sha256').update(big.value).digest('hex'), headersDropped: false });
    const kept = Buffer.from(d.value, 'base64');
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.equals(big.value.subarray(0, kept.length))).toBe(true);
    const producer = { send: jest.fn() };
    await expect(redrive(store, producer as never, { letter: d, stream: e.streamName, position: '', redriven: null } as never, null, Date.now)).rejects.toThrow(/truncated/);
    expect(producer.send).not.toHaveBeenCalled();
  } finally {
    await store.close();
  }
});
