/**
 * The byte budget of one append, shared by every adapter (and by callers that split their own
 * batches, e.g. dead letters). KurrentDB refuses an append whose events exceed its MaxAppendSize
 * (1,048,576 bytes by default) with MaxAppendSizeExceededError; the other stores have no such
 * limit, but every adapter enforces the configured budget the same way, before anything is
 * written, so the behaviour is the same everywhere and a tiny budget can be tested on each.
 */
import { AppendTooLargeError, NewEvent } from '../port';

/**
 * Default budget of the KurrentDB adapter: under the server's default MaxAppendSize (1 MiB)
 * with room for the per-record framing the server adds (stream name, ids, flags, timestamps).
 */
export const KURRENTDB_DEFAULT_MAX_APPEND_BYTES = 960 * 1024;

/** Per-event framing counted on top of the payload (id, type, lengths, flags). */
export const EVENT_OVERHEAD_BYTES = 128;

/** Size of one serialised event as the budget counts it. */
export function preparedEventBytes(e: { type: string; data: string; metadata: string }): number {
  return EVENT_OVERHEAD_BYTES + Buffer.byteLength(e.type) + Buffer.byteLength(e.data) + Buffer.byteLength(e.metadata);
}

/** Size of one event not yet serialised (undefined data throws like the append would). */
export function newEventBytes(e: NewEvent): number {
  return preparedEventBytes({ type: e.type, data: JSON.stringify(e.data) ?? '', metadata: JSON.stringify(e.metadata ?? {}) ?? '' });
}

/** Validates a budget option: undefined (no limit) or a positive integer. */
export function normaliseBudget(maxAppendBytes: number | undefined, fallback: number | null = null): number | null {
  if (maxAppendBytes === undefined) return fallback;
  if (!Number.isSafeInteger(maxAppendBytes) || maxAppendBytes <= 0) {
    throw new TypeError(`maxAppendBytes must be a positive integer, got ${String(maxAppendBytes)}`);
  }
  return maxAppendBytes;
}

/** Throws AppendTooLargeError when one append's events exceed the budget (nothing is written). */
export function checkBudget(
  streamName: string,
  events: readonly { type: string; data: string; metadata: string }[],
  budget: number | null,
): void {
  if (budget === null) return;
  let total = 0;
  for (const e of events) total += preparedEventBytes(e);
  if (total > budget) throw new AppendTooLargeError(streamName, events.length, total, budget);
}

/**
 * Splits events into consecutive chunks, each within `budget` bytes, order kept. For callers
 * whose events need not be atomic together (ids deterministic, so a chunk retried after a crash
 * is recognised). An event alone over the budget throws AppendTooLargeError: the caller must
 * shrink it, no chunking can help.
 */
export function chunkByBytes<T extends NewEvent>(streamName: string, events: readonly T[], budget: number | null): T[][] {
  if (budget === null) return events.length ? [[...events]] : [];
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const e of events) {
    const n = newEventBytes(e);
    if (n > budget) throw new AppendTooLargeError(streamName, 1, n, budget);
    if (current.length > 0 && size + n > budget) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(e);
    size += n;
  }
  if (current.length) chunks.push(current);
  return chunks;
}
