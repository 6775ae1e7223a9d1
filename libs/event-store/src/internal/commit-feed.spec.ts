import type { ReadAllOptions, StoredEvent } from '../port';
import { CommitFeedReader, CommittedBatch, CommittedRow, CoveredPage } from './commit-feed';

/** A tiny log: rows by position, read the way the SQLite adapter reads (with the head). */
class Log {
  rows: CommittedRow[] = [];
  reads = 0;
  append(stream: string, n: number, type = 'T'): CommittedBatch {
    const before = this.head();
    const rows: CommittedRow[] = [];
    for (let i = 0; i < n; i++) {
      const p = before + BigInt(i) + 1n;
      rows.push({ globalPosition: p, streamName: stream, revision: 0, id: `id-${p}`, type, data: JSON.stringify({ p: Number(p) }), metadata: '{}', recordedAt: 'x' });
    }
    this.rows.push(...rows);
    return { before, rows };
  }
  head(): bigint {
    return this.rows.length ? this.rows[this.rows.length - 1].globalPosition : 0n;
  }
  read = (o: ReadAllOptions): CoveredPage => {
    this.reads++;
    const match = this.rows.filter(
      (r) => r.globalPosition > (o.after ?? 0n) && (!o.streamPrefix || r.streamName.startsWith(o.streamPrefix)) && (!o.types || o.types.includes(r.type)),
    );
    const max = o.maxCount ?? match.length;
    const page = match.slice(0, max);
    const events = page.map((r) => ({ id: r.id, globalPosition: r.globalPosition }) as StoredEvent);
    return { events, covered: match.length > max ? page[page.length - 1].globalPosition : this.head() };
  };
}

/** Drives a reader as PollingSubscription does: after = last delivered; collects positions. */
async function drain(reader: CommitFeedReader, state: { after: bigint; got: bigint[] }, maxCount = 100): Promise<void> {
  for (;;) {
    const page = await reader.readPage({ after: state.after, maxCount });
    if (page.length === 0) return;
    for (const e of page) state.got.push(e.globalPosition);
    state.after = page[page.length - 1].globalPosition;
  }
}

const positions = (log: Log, prefix?: string, types?: string[]) =>
  log.rows.filter((r) => (!prefix || r.streamName.startsWith(prefix)) && (!types || types.includes(r.type))).map((r) => r.globalPosition);

describe('CommitFeedReader', () => {
  it('given a reader that has read to the head, when commits follow, then they are delivered from the feed without a read', async () => {
    const log = new Log();
    const reader = new CommitFeedReader(log.read, {});
    log.append('space-a', 3);
    const state = { after: 0n, got: [] as bigint[] };
    await drain(reader, state);
    const readsBefore = log.reads;
    reader.push(log.append('space-a', 2));
    reader.push(log.append('space-b', 2));
    await drain(reader, state);
    expect(state.got).toEqual(positions(log));
    expect(log.reads - readsBefore).toBe(1); // the final empty page only
  });

  it('given a commit the reader never saw (another writer), when the next commit arrives, then it reads and neither skips nor repeats', async () => {
    const log = new Log();
    const reader = new CommitFeedReader(log.read, {});
    const state = { after: 0n, got: [] as bigint[] };
    reader.push(log.append('space-a', 2));
    await drain(reader, state);
    log.append('space-x', 3); // not pushed: a gap
    reader.push(log.append('space-a', 2));
    await drain(reader, state);
    expect(state.got).toEqual(positions(log));
  });

  it('given commits queued before the first read, when read, then nothing is delivered twice', async () => {
    const log = new Log();
    const reader = new CommitFeedReader(log.read, {});
    reader.push(log.append('space-a', 4));
    reader.push(log.append('space-a', 4));
    const state = { after: 0n, got: [] as bigint[] };
    await drain(reader, state, 3);
    reader.push(log.append('space-a', 5));
    await drain(reader, state, 3);
    expect(state.got).toEqual(positions(log));
  });

  it('given a filter, when fed, then only matching events are delivered and pages respect maxCount', async () => {
    const log = new Log();
    const reader = new CommitFeedReader(log.read, { streamPrefix: 'space-', types: ['A'] });
    const state = { after: 0n, got: [] as bigint[] };
    await drain(reader, state);
    const pages: number[] = [];
    reader.push(log.append('space-a', 5, 'A'));
    reader.push(log.append('catalog', 3, 'A'));
    reader.push(log.append('space-b', 4, 'B'));
    reader.push(log.append('space-c', 6, 'A'));
    for (;;) {
      const page = await reader.readPage({ after: state.after, maxCount: 4 });
      if (page.length === 0) break;
      pages.push(page.length);
      for (const e of page) state.got.push(e.globalPosition);
      state.after = page[page.length - 1].globalPosition;
    }
    expect(state.got).toEqual(positions(log, 'space-', ['A']));
    expect(Math.max(...pages)).toBeLessThanOrEqual(4);
  });

  it('given more queued events than its bound, when drained, then it reads instead and still delivers every event once', async () => {
    const log = new Log();
    const reader = new CommitFeedReader(log.read, {}, 5);
    const state = { after: 0n, got: [] as bigint[] };
    await drain(reader, state);
    for (let i = 0; i < 4; i++) reader.push(log.append('space-a', 3));
    await drain(reader, state);
    expect(state.got).toEqual(positions(log));
  });
});
