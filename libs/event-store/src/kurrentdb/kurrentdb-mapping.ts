/**
 * KurrentDB records and positions mapped to the port's (see kurrentdb-event-store.ts).
 */
import { ANY, NO_STREAM, START, eventTypeFilter, excludeSystemEvents, streamNameFilter } from '@kurrent/kurrentdb-client';
import type { AllStreamResolvedEvent, Filter, ReadPosition, RecordedEvent, ResolvedEvent, StreamState } from '@kurrent/kurrentdb-client';
import { ExpectedRevision, StoredEvent } from '../port';

export function isSystem(streamName: string, type: string): boolean {
  return streamName.startsWith('$') || type.startsWith('$');
}

function asObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)
    ? (value as Record<string, unknown>)
    : {};
}

export function toStored(e: RecordedEvent, position: bigint): StoredEvent {
  return {
    id: e.id.toLowerCase(),
    streamName: e.streamId,
    type: e.type,
    data: asObject(e.data),
    metadata: asObject(e.metadata),
    revision: Number(e.revision),
    globalPosition: position,
    recordedAt: e.created.toISOString(),
  };
}

export function positionOf(resolved: ResolvedEvent | AllStreamResolvedEvent): bigint {
  const commit = resolved.event?.position?.commit ?? resolved.commitPosition;
  return commit ?? 0n;
}

export function fromPosition(after: bigint): ReadPosition {
  return after > 0n ? { commit: after, prepare: after } : START;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The server-side filter: by event type when types are asked for (the relay: the server skips
 * every other event), else by stream prefix, else no system events. The other criterion, if any,
 * is applied on the client.
 */
export function serverFilter(streamPrefix: string | null, types: string[] | null): Filter {
  if (types) return eventTypeFilter({ regex: `^(${types.map(escapeRegex).join('|')})$` });
  return streamPrefix ? streamNameFilter({ prefixes: [streamPrefix] }) : excludeSystemEvents();
}

/** Closes a read early (server-side resources), whatever the iterator offers. */
export async function closeRead(it: AsyncIterator<unknown>): Promise<void> {
  const r = it as { return?: () => Promise<unknown>; cancel?: () => Promise<unknown> };
  try {
    if (typeof r.cancel === 'function') await r.cancel();
    else if (typeof r.return === 'function') await r.return();
  } catch {
    // already closed
  }
}

export function toStreamState(expected: ExpectedRevision): StreamState {
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'any') return ANY;
  return BigInt(expected);
}
