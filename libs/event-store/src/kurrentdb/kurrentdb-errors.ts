/**
 * KurrentDB error classification and translation to the port's errors (see kurrentdb-event-store.ts).
 */
import { ErrorType, NO_STREAM, WrongExpectedVersionError } from '@kurrent/kurrentdb-client';
import { AppendTooLargeError, DuplicateEventIdError, ExpectedRevision, StoreUnavailableError, WrongExpectedRevisionError } from '../port';

/** gRPC status codes meaning "try again later". */
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;

const TRANSIENT_TYPES = new Set<string>([
  ErrorType.UNAVAILABLE,
  ErrorType.DEADLINE_EXCEEDED,
  ErrorType.TIMEOUT,
  ErrorType.NOT_LEADER,
]);

export function isKurrentTransient(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const { type, code } = err as { type?: unknown; code?: unknown };
  if (typeof type === 'string' && TRANSIENT_TYPES.has(type)) return true;
  return code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED || code === GRPC_RESOURCE_EXHAUSTED;
}

/** Errors a READ can never outgrow by waiting: everything else (UnknownError included) is transient. */
const PERMANENT_READ_TYPES = new Set<string>([
  ErrorType.STREAM_NOT_FOUND,
  ErrorType.NOT_FOUND,
  ErrorType.ACCESS_DENIED,
  ErrorType.STREAM_DELETED,
  ErrorType.STREAM_TOMBSTONED,
  ErrorType.INVALID_ARGUMENT,
  ErrorType.UNSUPPORTED,
]);
const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/**
 * Read errors: transient unless not-found, access-denied (or another error waiting cannot fix).
 * Deadlines and server restarts arrive from the client as UnknownError: they are transient.
 */
export function isKurrentReadTransient(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  if (err instanceof TypeError || err instanceof RangeError) return false; // our own bug, not the server
  const { type, code } = err as { type?: unknown; code?: unknown };
  if (typeof type === 'string' && PERMANENT_READ_TYPES.has(type)) return false;
  if (code === GRPC_NOT_FOUND || code === GRPC_PERMISSION_DENIED || code === GRPC_UNAUTHENTICATED) return false;
  return true;
}

export function isAccessDenied(err: unknown): boolean {
  const { type, code } = (err ?? {}) as { type?: unknown; code?: unknown };
  return type === ErrorType.ACCESS_DENIED || code === GRPC_PERMISSION_DENIED || code === GRPC_UNAUTHENTICATED;
}

export function isStreamNotFound(err: unknown): boolean {
  return (err as { type?: unknown } | null)?.type === ErrorType.STREAM_NOT_FOUND;
}

/** What the translation of a write error needs of the store. */
export interface WriteErrorContext {
  /** Forgets the ids tracked for a stream (after a conflict its tip is unknown). */
  forget(streamName: string): void;
  streamRevision(streamName: string): Promise<number>;
  readonly maxAppendBytes: number | null;
}

export async function translateWriteError(
  store: WriteErrorContext,
  err: unknown,
  streamName?: string,
  expected?: ExpectedRevision,
): Promise<unknown> {
  if (
    err instanceof WrongExpectedRevisionError ||
    err instanceof DuplicateEventIdError ||
    err instanceof StoreUnavailableError ||
    err instanceof TypeError
  ) {
    return err;
  }
  if (err instanceof WrongExpectedVersionError || (err as { type?: unknown } | null)?.type === ErrorType.WRONG_EXPECTED_VERSION) {
    const w = err as WrongExpectedVersionError;
    const stream = w.streamName || streamName || 'unknown';
    store.forget(stream);
    let actual: number;
    if (w.actualState === NO_STREAM) actual = -1;
    else if (typeof w.actualState === 'bigint') actual = Number(w.actualState);
    else actual = await store.streamRevision(stream).catch(() => -1);
    return new WrongExpectedRevisionError(stream, expected ?? 'any', actual);
  }
  const type = (err as { type?: unknown } | null)?.type;
  if (type === ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED || type === ErrorType.APPEND_RECORD_SIZE_EXCEEDED) {
    // The server's MaxAppendSize is below our budget: configure maxAppendBytes lower.
    return new AppendTooLargeError(streamName ?? 'unknown', 0, -1, store.maxAppendBytes ?? -1);
  }
  if (isKurrentReadTransient(err)) {
    return new StoreUnavailableError(`kurrentdb unavailable: ${(err as Error).message}`, err);
  }
  return err;
}

/** Read errors: transient (StoreUnavailableError) unless not-found, access-denied or alike. */
export function translateReadError(err: unknown, streamName?: string): unknown {
  if (err instanceof StoreUnavailableError || err instanceof TypeError) return err;
  if (isAccessDenied(err)) {
    const what = streamName ? `stream ${streamName}` : '$all';
    const e = new Error(`kurrentdb: access denied reading ${what}: grant the service's user read on it (see README, KurrentDB user and ACLs): ${(err as Error).message}`);
    (e as Error & { cause?: unknown }).cause = err;
    return e;
  }
  if (isKurrentReadTransient(err)) return new StoreUnavailableError(`kurrentdb unavailable: ${(err as Error).message}`, err);
  return err;
}
