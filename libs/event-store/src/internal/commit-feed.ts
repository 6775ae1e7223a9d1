/**
 * A subscription fed with the events this process has just committed, instead of reading them
 * back, whenever that provably delivers the same pages a read would (the SQLite adapter).
 *
 * A store that has one writer at a time and assigns positions in commit order (SQLite: BEGIN
 * IMMEDIATE, AUTOINCREMENT) can say, for each of its commits, `before`: the highest position that
 * existed when the commit's write transaction began. The events with a position in
 * (`before`, last event of the commit] are then exactly the commit's own events.
 *
 * The reader keeps `covered`: a position such that every event the subscription matches (prefix,
 * types) at or before it has been delivered. A commit whose `before` is at or below `covered`
 * leaves no gap: its events after `covered` that match are the next page, and `covered` moves to
 * its last event. Any other commit (one made by another process or outside the group commit,
 * missed, or dropped because the queue was full) shows as a gap: the queue is cleared and the
 * page is read from the store, as without a feed. Reads set `covered` too: a page shorter than
 * asked reaches the head read in the same read transaction, a full page reaches its last event.
 *
 * So the feed only ever replaces a read by the same answer: never an event twice, never one
 * skipped. Memory is bounded: at most `maxQueued` events wait in the queue.
 */
import type { ReadAllOptions, StoredEvent } from '../port';

/** One event as the adapter wrote it (payloads as the JSON text stored). */
export interface CommittedRow {
  globalPosition: bigint;
  streamName: string;
  revision: number;
  id: string;
  type: string;
  data: string;
  metadata: string;
  recordedAt: string;
}

/** A committed write transaction of this process: every event it wrote, in position order. */
export interface CommittedBatch {
  /** The highest position that existed when the write transaction began (0n: none). */
  before: bigint;
  rows: CommittedRow[];
}

/** A read of the store and how far it covers the subscription's events (see `covered`). */
export interface CoveredPage {
  events: StoredEvent[];
  covered: bigint;
}

/** Events a feed reader may hold before it drops its queue (and reads instead). */
export const DEFAULT_MAX_QUEUED = 30_000;

export function storedOfRow(r: CommittedRow): StoredEvent {
  return {
    id: r.id,
    streamName: r.streamName,
    type: r.type,
    data: JSON.parse(r.data) as Record<string, unknown>,
    metadata: r.metadata === '{}' ? {} : (JSON.parse(r.metadata) as Record<string, unknown>),
    revision: r.revision,
    globalPosition: r.globalPosition,
    recordedAt: r.recordedAt,
  };
}

export class CommitFeedReader {
  private queue: CommittedBatch[] = [];
  private queued = 0;
  /** Index of the next row of queue[0] (a page may end inside a commit). */
  private next = 0;
  /** Every matching event at or before it was delivered; null until the first read. */
  private covered: bigint | null = null;
  private readonly types: Set<string> | null;

  constructor(
    /** Reads a page after `after` and says how far it covers (one read transaction). */
    private readonly read: (options: ReadAllOptions) => CoveredPage,
    private readonly filter: { streamPrefix?: string; types?: string[] },
    private readonly maxQueued = DEFAULT_MAX_QUEUED,
  ) {
    this.types = filter.types ? new Set(filter.types) : null;
  }

  /** Queues a commit of this process (called right after it committed). */
  push(batch: CommittedBatch): void {
    if (batch.rows.length === 0) return;
    if (this.queued + batch.rows.length > this.maxQueued) {
      // Too far behind: drop what waits; the gap it leaves makes the next page a read.
      this.clear();
      return;
    }
    this.queue.push(batch);
    this.queued += batch.rows.length;
  }

  /** The next page after `options.after` (the last event delivered): from the queue when it has no gap, else read. */
  readPage = async (options: ReadAllOptions): Promise<StoredEvent[]> => {
    const max = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    const fed = this.fromQueue(max);
    if (fed.length > 0) return fed;
    // Nothing (contiguous) queued: read. The queue's commits are all at or before the head read.
    this.clear();
    const page = this.read(options);
    if (this.covered === null || page.covered > this.covered) this.covered = page.covered;
    return page.events;
  };

  private fromQueue(max: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    while (this.queue.length > 0 && out.length < max) {
      const batch = this.queue[0];
      if (this.next === 0 && (this.covered === null || batch.before > this.covered)) {
        // A gap (or nothing read yet): only a read can say what lies before this commit.
        this.clear();
        break;
      }
      const rows = batch.rows;
      while (this.next < rows.length && out.length < max) {
        const r = rows[this.next++];
        if (r.globalPosition <= (this.covered as bigint)) continue;
        if (this.matches(r)) out.push(storedOfRow(r));
        this.covered = r.globalPosition;
      }
      if (this.next >= rows.length) {
        this.queue.shift();
        this.queued -= rows.length;
        this.next = 0;
      }
    }
    return out;
  }

  private matches(r: CommittedRow): boolean {
    if (this.filter.streamPrefix !== undefined && !r.streamName.startsWith(this.filter.streamPrefix)) return false;
    return this.types === null || this.types.has(r.type);
  }

  private clear(): void {
    this.queue = [];
    this.queued = 0;
    this.next = 0;
  }
}
