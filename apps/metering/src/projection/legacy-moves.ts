/**
 * Upgrade path for stores written before usage moves were recorded (SubscriptionChanged events
 * without `moves`): such an event is given its moves here, computed by the domain's attribution
 * rule over the Space's history before it (the same answer the read models gave then, when they
 * kept one row per use). Only those old events pay this (one read of their Space's stream prefix);
 * every event written since carries its moves. Nothing is written back: events are facts.
 */
import {
  changeMoves,
  dataAs,
  decodeSpaceEvents,
  foldSpace,
  parseStoredJson,
  withSubscriptionChange,
} from '@metering/domain';
import type { EventStore, StoredEvent, StoredEventJson } from '@metering/event-store';
import type { FoldedEvent, PageEvent } from './apply-events';

const isLegacyChange = (e: FoldedEvent): boolean =>
  e.type === 'SubscriptionChanged' && e.streamName.startsWith('space-') && (e.data as { moves?: unknown }).moves === undefined;

/** The event given its recorded moves. */
async function withMoves<E extends FoldedEvent>(store: EventStore, e: E): Promise<E> {
  const before = await store.readStream(e.streamName, { maxCount: e.revision });
  const state = foldSpace(e.streamName.slice('space-'.length), decodeSpaceEvents(before));
  const d = dataAs('SubscriptionChanged', e);
  const { moves, memberMoves } = changeMoves(state.timeline, withSubscriptionChange(state.timeline, d), state.recent.values());
  return { ...e, data: { ...e.data, moves, ...(memberMoves.length > 0 ? { memberMoves } : {}) } };
}

/** The page with every legacy SubscriptionChanged given its recorded moves (other events untouched). */
export async function withLegacyMoves<E extends FoldedEvent = StoredEvent>(store: EventStore, page: E[]): Promise<E[]> {
  if (!page.some(isLegacyChange)) return page;
  const out: E[] = [];
  for (const e of page) out.push(isLegacyChange(e) ? await withMoves(store, e) : e);
  return out;
}

/**
 * `withLegacyMoves` of a page read as JSON text (`readAllJson`): its SubscriptionChanged events of
 * Space streams (one per plan change: few) are parsed here, in place in the page, and given their
 * moves when they have none; every other event stays JSON text, parsed when it is folded.
 */
export async function withLegacyMovesJson(store: EventStore, page: StoredEventJson[]): Promise<PageEvent[]> {
  const out: PageEvent[] = page;
  for (let i = 0; i < page.length; i++) {
    const e = page[i];
    if (e.type !== 'SubscriptionChanged' || !e.streamName.startsWith('space-')) continue;
    const parsed = foldedOfJson(e);
    out[i] = isLegacyChange(parsed) ? await withMoves(store, parsed) : parsed;
  }
  return out;
}

/** An event read as JSON text (`readAllJson`), parsed: its data, and its metadata when it has some. */
export function foldedOfJson(e: StoredEventJson): FoldedEvent {
  const { data, metadata } = parseStoredJson(e.type, e.dataJson, e.metadataJson);
  const parsed: FoldedEvent = { id: e.id, streamName: e.streamName, type: e.type, data, revision: e.revision, globalPosition: e.globalPosition };
  if (metadata !== undefined) parsed.metadata = metadata;
  return parsed;
}
