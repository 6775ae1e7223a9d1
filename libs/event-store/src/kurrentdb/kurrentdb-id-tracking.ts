/**
 * Bounded id tracking of the KurrentDB adapter (see kurrentdb-event-store.ts): the server does not
 * index event ids, so before each append the adapter reads only the stream's tail and keeps a
 * bounded window of the latest ids per stream (`window`) for at most `streamLimit` streams (LRU).
 * It never reads a stream's history.
 */
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import { readStreamRaw, readTail } from './kurrentdb-reads';

/** The latest ids of one stream: a bounded window ending at `revision`. */
export interface StreamIds {
  revision: number;
  ids: Map<string, number>;
}

export class StreamIdTracker {
  private readonly idCache = new Map<string, StreamIds>();

  constructor(
    private readonly client: KurrentDBClient,
    private readonly idCacheLimit: number,
    private readonly idWindow: number,
  ) {}

  /** Forgets what is known of a stream (after a conflict or a failed append). */
  forget(streamName: string): void {
    this.idCache.delete(streamName);
  }

  /**
   * The stream's tip and its latest ids, without reading its history: the last `tail` events
   * (backwards, from the end) are always read, which finds an idempotent retry and the tip; ids
   * of earlier appends stay in a bounded window per stream (LRU over streams).
   */
  async recentIds(streamName: string, tail: number): Promise<StreamIds> {
    let entry = this.idCache.get(streamName);
    if (entry) this.idCache.delete(streamName); // LRU: re-insert as most recent
    this.idCache.set(streamName, (entry ??= { revision: -1, ids: new Map() }));
    while (this.idCache.size > this.idCacheLimit) this.idCache.delete(this.idCache.keys().next().value as string);
    const last = await readTail(this.client, streamName, tail);
    const tip = last.length ? Number(last[0].revision) : -1;
    if (tip < entry.revision) {
      entry.revision = -1; // the stream was deleted and recreated: forget what we knew
      entry.ids.clear();
    }
    if (tip > entry.revision) {
      const gap = tip - entry.revision;
      // A gap larger than the tail read: what is between is only read up to the window.
      if (gap > last.length && entry.revision >= 0 && gap <= this.idWindow) {
        for (const e of await readStreamRaw(this.client, streamName, entry.revision + 1, gap - last.length)) entry.ids.set(e.id.toLowerCase(), Number(e.revision));
      } else if (gap > last.length) {
        entry.ids.clear();
      }
      for (const e of [...last].reverse()) entry.ids.set(e.id.toLowerCase(), Number(e.revision));
      entry.revision = tip;
      this.trim(entry);
    }
    return entry;
  }

  trim(entry: StreamIds): void {
    const floor = entry.revision - this.idWindow;
    for (const [id, revision] of entry.ids) {
      if (revision > floor) break; // insertion order = revision order
      entry.ids.delete(id);
    }
  }
}
