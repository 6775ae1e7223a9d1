/**
 * Upgrade path for stores written before usage moves were recorded (SubscriptionChanged events
 * without `moves`): such an event is given its moves here, computed by the domain's attribution
 * rule over the Space's history before it (the same answer the read models gave then, when they
 * kept one row per use). Only those old events pay this (one read of their Space's stream prefix);
 * every event written since carries its moves. Nothing is written back: events are facts.
 */
import {
  attributionMoves,
  dataAs,
  decodeSpaceEvents,
  foldSpace,
  withSubscriptionChange,
} from '@metering/domain';
import type { EventStore, StoredEvent } from '@metering/event-store';

const isLegacyChange = (e: StoredEvent): boolean =>
  e.type === 'SubscriptionChanged' && e.streamName.startsWith('space-') && (e.data as { moves?: unknown }).moves === undefined;

/** The page with every legacy SubscriptionChanged given its recorded moves (other events untouched). */
export async function withLegacyMoves(store: EventStore, page: StoredEvent[]): Promise<StoredEvent[]> {
  if (!page.some(isLegacyChange)) return page;
  const out: StoredEvent[] = [];
  for (const e of page) {
    if (!isLegacyChange(e)) {
      out.push(e);
      continue;
    }
    const before = await store.readStream(e.streamName, { maxCount: e.revision });
    const state = foldSpace(e.streamName.slice('space-'.length), decodeSpaceEvents(before));
    const d = dataAs('SubscriptionChanged', e);
    const moves = attributionMoves(state.timeline, withSubscriptionChange(state.timeline, d), state.recent.values());
    out.push({ ...e, data: { ...e.data, moves } });
  }
  return out;
}
