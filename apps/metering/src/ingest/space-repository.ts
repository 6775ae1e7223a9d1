import {
  DEFAULT_CORRECTION_WINDOW_MS,
  SPACE_SNAPSHOT_SCHEMA,
  type SpaceEvent,
  type SpaceState,
  compactSpace,
  evolve,
  initialSpaceState,
  snapshotOfSpace,
  spaceFromSnapshot,
  spaceStreamName,
} from '@metering/domain';
import type { EventStore, StoredEvent } from '@metering/event-store';

export interface SpaceRepositoryOptions {
  /** Spaces kept in memory (LRU). Default 50,000. */
  maxCached?: number;
  /** The corrections window the decisions use (compaction keeps what it can still change). */
  correctionWindowMs?: number;
  /**
   * A snapshot is written once at least this many events were folded since the last one, and at
   * least as many as the uses the state holds (so writing snapshots costs O(1) per event, amortised).
   * Default 1000.
   */
  snapshotEvery?: number;
  /** Told about each cold load: how many events it read and whether it started from a snapshot. */
  onLoad?: (load: { spaceId: string; eventsRead: number; fromSnapshot: boolean; ms: number }) => void;
  /** Snapshot writes are best effort (a cache): failures are reported here, never thrown. */
  onSnapshotError?: (err: unknown, spaceId: string) => void;
}

/** Events folded per page on a cold load (and between compactions). */
const LOAD_PAGE = 5000;

const asSpaceEvent = (e: StoredEvent): SpaceEvent => ({ type: e.type, data: e.data }) as unknown as SpaceEvent;

/**
 * Loads a Space's decider state with a bounded in-process cache. A cold load reads the Space's
 * latest snapshot (when its schema and window fit) and folds only the events after it, so its work
 * is bounded whatever the stream's length; a stream without a usable snapshot is folded once,
 * compacting as it goes, and a snapshot is written for next time. The state is compacted to the
 * corrections window as the clock moves, so memory per Space is a constant plus the window's uses.
 * A stale cache entry is harmless: the append's exact expected revision catches it, and the caller
 * reloads.
 */
export class SpaceRepository {
  private readonly cache = new Map<string, SpaceState>();
  /** Version (events folded) of the latest snapshot written or read for a cached state. */
  private readonly snapshotAt = new WeakMap<SpaceState, number>();
  private readonly maxCached: number;
  private readonly windowMs: number;
  private readonly snapshotEvery: number;

  constructor(private readonly store: EventStore, private readonly options: SpaceRepositoryOptions = {}) {
    this.maxCached = options.maxCached ?? 50_000;
    this.windowMs = options.correctionWindowMs ?? DEFAULT_CORRECTION_WINDOW_MS;
    this.snapshotEvery = options.snapshotEvery ?? 1000;
  }

  get correctionWindowMs(): number {
    return this.windowMs;
  }

  /** The Space's state; `now` (the injected clock) decides what compaction may drop. */
  async load(spaceId: string, now: number): Promise<SpaceState> {
    const cached = this.cache.get(spaceId);
    if (cached) {
      // Refresh LRU order.
      this.cache.delete(spaceId);
      this.cache.set(spaceId, cached);
      return cached;
    }
    const started = performance.now();
    const stream = spaceStreamName(spaceId);
    const snapshot = await this.store.readSnapshot(stream);
    let state = snapshot ? spaceFromSnapshot(spaceId, snapshot.schema, snapshot.data, this.windowMs) : null;
    if (state && snapshot && state.version !== snapshot.revision + 1) state = null;
    const fromSnapshot = state !== null;
    state ??= initialSpaceState(spaceId);
    const start = state.version;
    this.snapshotAt.set(state, start);
    await this.foldTail(state, now);
    compactSpace(state, now, this.windowMs, true);
    this.options.onLoad?.({ spaceId, eventsRead: state.version - start, fromSnapshot, ms: performance.now() - started });
    this.maybeSnapshot(state);
    this.remember(state);
    return state;
  }

  /** Loads fresh from the store, folding only the events after what is cached. */
  async refresh(spaceId: string, now: number): Promise<SpaceState> {
    const cached = this.cache.get(spaceId);
    if (!cached) return this.load(spaceId, now);
    await this.foldTail(cached, now);
    return cached;
  }

  /** After an append of the state's own decisions: compacts as the clock moves, snapshots now and then. */
  appended(state: SpaceState, now: number): void {
    compactSpace(state, now, this.windowMs);
    this.maybeSnapshot(state);
    this.remember(state);
  }

  remember(state: SpaceState): void {
    this.cache.delete(state.spaceId);
    this.cache.set(state.spaceId, state);
    if (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }

  invalidate(spaceId: string): void {
    this.cache.delete(spaceId);
  }

  clear(): void {
    this.cache.clear();
  }

  /** Folds the events after the state's version, page by page, compacting between pages. */
  private async foldTail(state: SpaceState, now: number): Promise<void> {
    const stream = spaceStreamName(state.spaceId);
    for (;;) {
      const page = await this.store.readStream(stream, { fromRevision: state.version, maxCount: LOAD_PAGE });
      for (const e of page) evolve(state, asSpaceEvent(e));
      if (page.length < LOAD_PAGE) return;
      compactSpace(state, now, this.windowMs);
    }
  }

  private maybeSnapshot(state: SpaceState): void {
    const last = this.snapshotAt.get(state) ?? 0;
    if (state.version - last < Math.max(this.snapshotEvery, state.recent.size)) return;
    this.snapshotAt.set(state, state.version);
    const snapshot = { streamName: spaceStreamName(state.spaceId), revision: state.version - 1, schema: SPACE_SNAPSHOT_SCHEMA, data: snapshotOfSpace(state, this.windowMs) };
    this.store.writeSnapshot(snapshot).catch((err) => this.options.onSnapshotError?.(err, state.spaceId));
  }
}
