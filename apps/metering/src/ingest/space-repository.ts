import {
  DEFAULT_CORRECTION_WINDOW_MS,
  SPACE_SNAPSHOT_SCHEMA,
  type OlderUse,
  type OlderUsesWanted,
  type SpaceEvent,
  type SpaceState,
  compactSpace,
  USES_KEPT_MAX,
  decodeSpaceEvent,
  evolve,
  initialSpaceState,
  olderUseOf,
  snapshotOfSpace,
  spaceFromSnapshot,
  spaceStreamName,
} from '@metering/domain';
import type { EventStore, StoredEvent } from '@metering/event-store';
import { LruMap } from './lru-map';

export interface SpaceRepositoryOptions {
  /** At most this many Spaces kept in memory as states (LRU). Default 200,000. */
  maxCached?: number;
  /**
   * The states kept total at most this many bytes of heap, by `estimatedStateBytes` (LRU: the
   * oldest go to the second tier). The bound that holds memory whatever a Space's uses: a state
   * grows with the uses in its corrections window. Default 160 MiB.
   */
  maxCachedBytes?: number;
  /**
   * Second tier: a state pushed out of the first is kept as its snapshot body (a string, about a
   * quarter of the state's heap) while these bodies total at most this many characters (LRU), and
   * is restored from it (no store read) when its Space comes back. Default 48 MiB; 0: none.
   */
  maxCompactChars?: number;
  /** The corrections window the decisions use (compaction keeps what it can still change). */
  correctionWindowMs?: number;
  /**
   * At most about this many uses kept per state (`trimUses`); default USES_KEPT_MAX. On a store
   * without `readEventsById` none are dropped: the dedupe of a dropped use asks the store by id.
   */
  usesKeptMax?: number;
  /**
   * A snapshot is written once at least this many events were folded since the last one, and at
   * least as many as the uses the state holds (so writing snapshots costs O(1) per event, amortised).
   * Default 1000.
   */
  snapshotEvery?: number;
  /**
   * A batched cold load (`prefetch`) reads at most this many events at once: each Space of a read
   * gets an equal share of it (at most a load's page), and a Space whose tail after its snapshot is
   * longer is read on page by page, as `load` reads it. So the memory a batch's cold loads take is
   * bounded whatever the sizes of the Spaces it touches. Default 50,000.
   */
  prefetchEvents?: number;
  /** Told about each cold load: how many events it read and whether it started from a snapshot. */
  onLoad?: (load: { spaceId: string; eventsRead: number; fromSnapshot: boolean; ms: number }) => void;
  /** Told about each read-back of uses dropped from a state's tail (`olderUses`): the events it read. */
  onOlderUses?: (read: { spaceId: string; eventsRead: number }) => void;
  /** Snapshot writes are best effort (a cache): failures are reported here, never thrown. */
  onSnapshotError?: (err: unknown, spaceId: string) => void;
}

/** Events folded per page on a cold load (and between compactions). */
const LOAD_PAGE = 5000;
/** Bytes a second-tier entry costs beside its body's characters (map entry, entry object, string header). */
const COMPACT_ENTRY_OVERHEAD = 96;
/** Spaces per batched cold-load read (`prefetch`), at most. */
const PREFETCH_CHUNK = 1000;
/** `prefetchEvents`' default. */
export const DEFAULT_PREFETCH_EVENTS = 50_000;

/** The first tier's bounds unless set (and SPACE_CACHE_SIZE's and SPACE_CACHE_MB's defaults: config.ts). */
export const DEFAULT_MAX_CACHED = 200_000;
export const DEFAULT_MAX_CACHED_BYTES = 160 * 2 ** 20;

/**
 * Heap a state takes, in bytes, estimated from what it holds: measured with V8's heap after a full
 * collection for states of 0 to 1,000 uses, 1 to 20 subscription changes, 1 to 5 periods and 0 to
 * 40 thresholds fired (test/ingest/space-repository-weight.test.ts keeps it within 25 % of that):
 * a small state (a subscription, 3 uses) about 2 KB, each use in the window about 180 bytes more.
 */
export function estimatedStateBytes(s: SpaceState): number {
  return 900 + 180 * s.recent.size + 110 * s.subscriptionIds.size + 220 * s.timeline.length + 240 * s.periods.size + 85 * s.fired.size + 40 * s.droppedRevs.size;
}

const asSpaceEvent = (e: StoredEvent): SpaceEvent => {
  const event = decodeSpaceEvent(e);
  if (!event) throw new Error(`${e.streamName} holds a ${e.type} event, not a Space event`);
  return event;
};

/**
 * A SubscriptionChanged written before moves were recorded, met by a state that dropped uses
 * inside the window from its tail: `evolve` gives such a change its moves from the uses the state
 * holds, so that state cannot fold it. The load folds the stream again from its start, nothing
 * dropped until the end (legacy streams only: every change written since records its moves).
 */
class LegacyChangeAfterTrim extends Error {}

/** Folds stored events into the state, in place (throws LegacyChangeAfterTrim, above). */
function foldInto(state: SpaceState, events: readonly StoredEvent[]): void {
  for (const e of events) {
    const event = asSpaceEvent(e);
    if (event.type === 'SubscriptionChanged' && event.data.moves === undefined && state.droppedRevs.size > 0)
      throw new LegacyChangeAfterTrim(`${e.streamName}@${e.revision}: a SubscriptionChanged without moves after uses were dropped`);
    evolve(state, event);
  }
}

/** A first-tier entry: the state and its `estimatedStateBytes` when it was last weighed. */
interface Cached {
  state: SpaceState;
  bytes: number;
}

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
  /**
   * The first tier. An entry carries its weight, so a hit costs map operations on this Map only
   * (with 100,000 Spaces each is a cache miss: a hit used to cost about ten of them, on this Map
   * and a WeakMap of weights).
   */
  private readonly cache = new LruMap<string, Cached>();
  /** The sum of the entries' weights. */
  private cachedBytes = 0;
  private readonly maxCachedBytes: number;
  /** The second tier: states pushed out of `cache`, as snapshot bodies, with the version of their latest stored snapshot. */
  private readonly compact = new LruMap<string, { body: string; snapshotAt: number }>();
  private compactChars = 0;
  private readonly maxCompactChars: number;
  /** Version (events folded) of the latest snapshot written or read for a cached state. */
  private readonly snapshotAt = new WeakMap<SpaceState, number>();
  private readonly maxCached: number;
  private readonly windowMs: number;
  private readonly snapshotEvery: number;
  private readonly prefetchEvents: number;
  private readonly usesKeptMax: number;

  constructor(private readonly store: EventStore, private readonly options: SpaceRepositoryOptions = {}) {
    this.maxCached = options.maxCached ?? DEFAULT_MAX_CACHED;
    this.maxCachedBytes = options.maxCachedBytes ?? DEFAULT_MAX_CACHED_BYTES;
    this.maxCompactChars = options.maxCompactChars ?? 48 * 2 ** 20;
    this.windowMs = options.correctionWindowMs ?? DEFAULT_CORRECTION_WINDOW_MS;
    this.snapshotEvery = options.snapshotEvery ?? 1000;
    this.usesKeptMax = store.readEventsById ? (options.usesKeptMax ?? USES_KEPT_MAX) : Number.POSITIVE_INFINITY;
    if (!(this.usesKeptMax >= 2)) throw new TypeError('SpaceRepository: usesKeptMax must be a number >= 2');
    this.prefetchEvents = options.prefetchEvents ?? DEFAULT_PREFETCH_EVENTS;
    if (!Number.isSafeInteger(this.prefetchEvents) || this.prefetchEvents < 1) throw new TypeError('SpaceRepository: prefetchEvents must be an integer >= 1');
  }

  get correctionWindowMs(): number {
    return this.windowMs;
  }

  /** The Space's state; `now` (the injected clock) decides what compaction may drop. */
  async load(spaceId: string, now: number): Promise<SpaceState> {
    const cached = this.cache.touch(spaceId);
    if (cached) return cached.state;
    const restored = this.restore(spaceId);
    if (restored) return restored;
    const started = performance.now();
    const stream = spaceStreamName(spaceId);
    const snapshot = await this.store.readSnapshot(stream);
    let state = snapshot ? spaceFromSnapshot(spaceId, snapshot.schema, snapshot.data, this.windowMs) : null;
    if (state && snapshot && state.version !== snapshot.revision + 1) state = null;
    let fromSnapshot = state !== null;
    state ??= initialSpaceState(spaceId);
    let start = state.version;
    this.snapshotAt.set(state, start);
    try {
      await this.foldTail(state, now, this.usesKeptMax);
    } catch (err) {
      if (!(err instanceof LegacyChangeAfterTrim)) throw err;
      state = initialSpaceState(spaceId);
      fromSnapshot = false;
      start = 0;
      this.snapshotAt.set(state, 0);
      await this.foldTail(state, now, Number.POSITIVE_INFINITY);
    }
    compactSpace(state, now, this.windowMs, true, this.usesKeptMax);
    this.options.onLoad?.({ spaceId, eventsRead: state.version - start, fromSnapshot, ms: performance.now() - started });
    this.maybeSnapshot(state);
    this.remember(state);
    return state;
  }

  /**
   * Cold loads of many Spaces in one batched store read (`readColdStarts`: a fixed number of round
   * trips whatever the number of Spaces), for the Spaces not cached; each is folded exactly as
   * `load` folds it and cached, so the `load` that follows is a hit. A Space cached meanwhile (by a
   * concurrent load) keeps its entry; a Space whose snapshot is not usable is left to `load`. Does
   * nothing on a store without the batched read (each `load` then reads its own).
   */
  async prefetch(spaceIds: Iterable<string>, now: number): Promise<void> {
    if (!this.store.readColdStarts) return;
    const missing = [...new Set(spaceIds)].filter((id) => !this.cache.has(id) && !this.compact.has(id));
    if (missing.length === 0) return;
    // Never more Spaces than the cache keeps (they would evict each other before their use), nor
    // than events a read may return (each Space reads at least one).
    const chunk = Math.max(1, Math.min(PREFETCH_CHUNK, this.maxCached, this.prefetchEvents));
    for (let i = 0; i < missing.length; i += chunk) {
      const ids = missing.slice(i, i + chunk);
      // Each Space's share of the read: the events returned are at most prefetchEvents in all.
      const share = Math.min(LOAD_PAGE, Math.floor(this.prefetchEvents / ids.length));
      const started = performance.now();
      const starts = await this.store.readColdStarts(ids.map(spaceStreamName), share);
      // A Space's load time: its share of the batched read, plus its own fold (which for a stream
      // without a snapshot is the whole stream, read on by foldTail).
      const readMs = (performance.now() - started) / ids.length;
      for (const spaceId of ids) {
        if (this.cache.has(spaceId) || this.compact.has(spaceId)) continue;
        const foldStarted = performance.now();
        const cold = starts.get(spaceStreamName(spaceId));
        if (!cold) continue;
        const { snapshot, events } = cold;
        let state = snapshot ? spaceFromSnapshot(spaceId, snapshot.schema, snapshot.data, this.windowMs) : null;
        if (state && snapshot && state.version !== snapshot.revision + 1) state = null;
        if (snapshot && !state) continue; // not usable: `load` folds the whole stream
        const fromSnapshot = state !== null;
        state ??= initialSpaceState(spaceId);
        const start = state.version;
        if (events.length && events[0].revision !== start) continue;
        this.snapshotAt.set(state, start);
        try {
          foldInto(state, events);
          if (events.length === share) {
            compactSpace(state, now, this.windowMs, false, this.usesKeptMax);
            await this.foldTail(state, now, this.usesKeptMax);
            if (this.cache.has(spaceId) || this.compact.has(spaceId)) continue;
          }
        } catch (err) {
          if (err instanceof LegacyChangeAfterTrim) continue; // `load` folds it
          throw err;
        }
        compactSpace(state, now, this.windowMs, true, this.usesKeptMax);
        this.options.onLoad?.({ spaceId, eventsRead: state.version - start, fromSnapshot, ms: readMs + (performance.now() - foldStarted) });
        this.maybeSnapshot(state);
        this.remember(state);
      }
    }
  }

  /** Loads fresh from the store, folding only the events after what is cached. */
  async refresh(spaceId: string, now: number): Promise<SpaceState> {
    const cached = this.cache.get(spaceId)?.state ?? this.restore(spaceId);
    if (!cached) return this.load(spaceId, now);
    try {
      await this.foldTail(cached, now, this.usesKeptMax);
    } catch (err) {
      if (!(err instanceof LegacyChangeAfterTrim)) throw err;
      this.invalidate(spaceId);
      return this.load(spaceId, now);
    }
    return cached;
  }

  /** After an append of the state's own decisions: compacts as the clock moves, snapshots now and then. */
  appended(state: SpaceState, now: number): void {
    compactSpace(state, now, this.windowMs, false, this.usesKeptMax);
    this.maybeSnapshot(state);
    this.remember(state);
  }

  /**
   * Caches the state, weighed again (it grows with its uses), as the newest entry; the state its
   * entry already holds (an append's, which the `load` that returned it made the newest) is only
   * weighed again, not moved a second time. The oldest states go to the second tier while there
   * are more than `maxCached` or they weigh more than `maxCachedBytes` (the newest stays, even
   * alone over the bound).
   */
  remember(state: SpaceState): void {
    const previous = this.cache.get(state.spaceId);
    const bytes = estimatedStateBytes(state);
    this.cachedBytes += bytes - (previous?.bytes ?? 0);
    if (previous?.state === state) previous.bytes = bytes;
    else this.cache.set(state.spaceId, { state, bytes });
    // A body kept for this Space is older than the state now cached (a Space cached in the first
    // tier has none: `stash` keeps only states pushed out of it, `restore` drops the body it takes).
    if (previous === undefined) this.dropCompact(state.spaceId);
    while (this.cache.size > 1 && (this.cache.size > this.maxCached || this.cachedBytes > this.maxCachedBytes)) {
      const [, oldest] = this.cache.shift() as [string, Cached];
      this.cachedBytes -= oldest.bytes;
      this.stash(oldest.state);
    }
  }

  invalidate(spaceId: string): void {
    this.forget(spaceId);
    this.dropCompact(spaceId);
  }

  clear(): void {
    this.cache.clear();
    this.cachedBytes = 0;
    this.compact.clear();
    this.compactChars = 0;
  }

  /** Spaces kept: as states (with their estimated bytes), and as snapshot bodies (with the characters they hold). */
  get cached(): { states: number; bytes: number; compact: number; compactChars: number } {
    return { states: this.cache.size, bytes: this.cachedBytes, compact: this.compact.size, compactChars: this.compactChars };
  }

  /** Drops the Space's first-tier entry, if any, and its weight. */
  private forget(spaceId: string): void {
    const entry = this.cache.get(spaceId);
    if (entry === undefined) return;
    this.cachedBytes -= entry.bytes;
    this.cache.delete(spaceId);
  }

  /** Keeps a state pushed out of the first tier as its snapshot body (oldest bodies go past the bound). */
  private stash(state: SpaceState): void {
    if (this.maxCompactChars <= 0) return;
    const body = snapshotOfSpace(state, this.windowMs);
    const cost = body.length + COMPACT_ENTRY_OVERHEAD;
    if (cost > this.maxCompactChars) return;
    this.dropCompact(state.spaceId);
    this.compact.set(state.spaceId, { body, snapshotAt: this.snapshotAt.get(state) ?? 0 });
    this.compactChars += cost;
    while (this.compactChars > this.maxCompactChars) {
      const [, oldest] = this.compact.shift() as [string, { body: string }];
      this.compactChars -= oldest.body.length + COMPACT_ENTRY_OVERHEAD;
    }
  }

  private dropCompact(spaceId: string): void {
    const entry = this.compact.get(spaceId);
    if (entry === undefined) return;
    this.compact.delete(spaceId);
    this.compactChars -= entry.body.length + COMPACT_ENTRY_OVERHEAD;
  }

  /**
   * The state of a Space kept in the second tier, back in the first (null: not kept). The same
   * state it was when pushed out (the snapshot round trip a cold load relies on), so as current
   * as a first-tier entry would have been: a stale one is caught by the append's expected revision.
   */
  private restore(spaceId: string): SpaceState | null {
    const entry = this.compact.get(spaceId);
    if (entry === undefined) return null;
    this.dropCompact(spaceId);
    const state = spaceFromSnapshot(spaceId, SPACE_SNAPSHOT_SCHEMA, entry.body, this.windowMs);
    if (state === null) return null;
    this.snapshotAt.set(state, entry.snapshotAt);
    this.remember(state);
    return state;
  }

  /**
   * The uses `wanted` names (`olderUsesWanted`: uses the state dropped from its tail that a
   * subscription change may move), read back from the Space's stream up to the state's version.
   */
  async olderUses(state: SpaceState, wanted: OlderUsesWanted): Promise<OlderUse[]> {
    const out: OlderUse[] = [];
    let eventsRead = 0;
    for await (const page of this.pages(state.spaceId, wanted.fromRevision, state.version)) {
      eventsRead += page.length;
      for (const e of page) {
        const use = olderUseOf(state, wanted, asSpaceEvent(e));
        if (use) out.push(use);
      }
    }
    this.options.onOlderUses?.({ spaceId: state.spaceId, eventsRead });
    return out;
  }

  /** Folds the events after the state's version, page by page, compacting between pages (at most `usesKeptMax` uses kept). */
  private async foldTail(state: SpaceState, now: number, usesKeptMax: number): Promise<void> {
    for await (const page of this.pages(state.spaceId, state.version)) {
      foldInto(state, page);
      if (page.length === LOAD_PAGE) compactSpace(state, now, this.windowMs, false, usesKeptMax);
    }
  }

  /** The Space's stream from `fromRevision` to `toRevision` (excluded; default: its end), in pages of at most LOAD_PAGE events. */
  private async *pages(spaceId: string, fromRevision: number, toRevision = Number.POSITIVE_INFINITY): AsyncGenerator<StoredEvent[]> {
    const stream = spaceStreamName(spaceId);
    for (let from = fromRevision; from < toRevision; ) {
      const maxCount = Math.min(LOAD_PAGE, toRevision - from);
      const page = await this.store.readStream(stream, { fromRevision: from, maxCount });
      if (page.length > 0) yield page;
      if (page.length < maxCount) return;
      from = page[page.length - 1].revision + 1;
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
