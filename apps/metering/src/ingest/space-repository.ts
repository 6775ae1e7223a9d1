import { type SpaceEvent, type SpaceState, foldSpace, spaceStreamName, evolve } from '@metering/domain';
import type { EventStore } from '@metering/event-store';

/**
 * Loads a Space's decider state from its stream, with a bounded in-process cache. A stale cache
 * entry is harmless: the append's exact expected revision catches it, and the caller reloads.
 */
export class SpaceRepository {
  private readonly cache = new Map<string, SpaceState>();

  constructor(private readonly store: EventStore, private readonly maxCached = 50_000) {}

  async load(spaceId: string): Promise<SpaceState> {
    const cached = this.cache.get(spaceId);
    if (cached) {
      // Refresh LRU order.
      this.cache.delete(spaceId);
      this.cache.set(spaceId, cached);
      return cached;
    }
    const stored = await this.store.readStream(spaceStreamName(spaceId));
    const state = foldSpace(spaceId, stored.map((e) => ({ type: e.type, data: e.data }) as unknown as SpaceEvent));
    this.remember(state);
    return state;
  }

  /** Loads fresh from the store, folding only the events after what is cached. */
  async refresh(spaceId: string): Promise<SpaceState> {
    const cached = this.cache.get(spaceId);
    if (!cached) return this.load(spaceId);
    const newer = await this.store.readStream(spaceStreamName(spaceId), { fromRevision: cached.version });
    let s = cached;
    for (const e of newer) s = evolve(s, { type: e.type, data: e.data } as unknown as SpaceEvent);
    return s;
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
}
