/**
 * Reads of the KurrentDB adapter (see kurrentdb-event-store.ts): a stream forwards or its tail
 * backwards, and $all in pages from an exclusive position. Errors are left to the caller to
 * translate.
 */
import { BACKWARDS, END, FORWARDS, KurrentDBClient, excludeSystemEvents } from '@kurrent/kurrentdb-client';
import type { RecordedEvent } from '@kurrent/kurrentdb-client';
import { StoredEvent } from '../port';
import { NormalisedReadAll } from '../internal/read-options';
import { isStreamNotFound } from './kurrentdb-errors';
import { closeRead, fromPosition, isSystem, positionOf, serverFilter, toStored } from './kurrentdb-mapping';

const READ_PAGE = 512;

/** The last `n` events of a stream, newest first. */
export async function readTail(client: KurrentDBClient, streamName: string, n: number): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  const it = client.readStream(streamName, { fromRevision: END, direction: BACKWARDS, maxCount: n });
  try {
    for await (const resolved of it) if (resolved.event) out.push(resolved.event);
  } catch (err) {
    if (isStreamNotFound(err)) return [];
    throw err;
  } finally {
    await closeRead(it);
  }
  return out;
}

export async function readStreamRaw(client: KurrentDBClient, streamName: string, fromRevision: number, maxCount: number | null): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  if (maxCount === 0) return out;
  const it = client.readStream(streamName, {
    fromRevision: BigInt(fromRevision),
    direction: FORWARDS,
    ...(maxCount === null ? {} : { maxCount }),
  });
  try {
    for await (const resolved of it) {
      if (resolved.event) out.push(resolved.event);
    }
  } catch (err) {
    if (isStreamNotFound(err)) return [];
    throw err;
  } finally {
    await closeRead(it);
  }
  return out;
}

export async function positionAt(client: KurrentDBClient, streamName: string, revision: number): Promise<bigint> {
  const [e] = await readStreamRaw(client, streamName, revision, 1);
  return e?.position?.commit ?? 0n;
}

/** $all after `o.after`, in pages, filtered on the server and on the client (see `serverFilter`). */
export async function readAllPaged(client: KurrentDBClient, o: NormalisedReadAll): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  if (o.maxCount === 0) return out;
  let from = o.after;
  for (;;) {
    let seen = 0;
    let progressed = false;
    // Ask for no more than is still wanted (+1: the read position is inclusive).
    const want = o.maxCount === null ? READ_PAGE : Math.min(READ_PAGE, o.maxCount - out.length + 1);
    const it = client.readAll({
      fromPosition: fromPosition(from),
      direction: FORWARDS,
      maxCount: want,
      filter: serverFilter(o.streamPrefix, o.types),
    });
    try {
      for await (const resolved of it) {
        seen++;
        const e = resolved.event;
        if (!e) continue;
        const pos = positionOf(resolved);
        if (pos <= from) continue; // the read position is inclusive
        from = pos;
        progressed = true;
        if (isSystem(e.streamId, e.type)) continue;
        if (o.streamPrefix && !e.streamId.startsWith(o.streamPrefix)) continue;
        if (o.types && !o.types.includes(e.type)) continue;
        out.push(toStored(e, pos));
        if (o.maxCount !== null && out.length >= o.maxCount) return out;
      }
    } finally {
      await closeRead(it);
    }
    if (seen < want || !progressed) return out;
  }
}

/** The commit position of the last non-system event in $all, 0n when there is none. */
export async function readHeadPosition(client: KurrentDBClient): Promise<bigint> {
  const it = client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 1, filter: excludeSystemEvents() });
  try {
    for await (const resolved of it) if (resolved.event) return positionOf(resolved);
  } finally {
    await closeRead(it);
  }
  return 0n;
}

/** Whether `position` (> 0n) is the commit position of a stored non-system event. */
export async function isEventPosition(client: KurrentDBClient, position: bigint): Promise<boolean> {
  const it = client.readAll({ fromPosition: { commit: position, prepare: position }, direction: FORWARDS, maxCount: 1, filter: excludeSystemEvents() });
  try {
    for await (const resolved of it) return resolved.event !== undefined && positionOf(resolved) === position;
  } finally {
    await closeRead(it);
  }
  return false;
}
