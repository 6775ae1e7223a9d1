/**
 * Error classification of the PostgreSQL adapter (see postgres-event-store.ts): failures to reach
 * the server become StoreUnavailableError; SQL errors are left as they are. Write conflicts
 * (unique keys) are translated by `translateWriteError` in postgres-append.ts.
 */
import { StoreUnavailableError } from '../port';

const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/** admin/crash shutdown, cannot connect now, too many connections, out of memory/disk. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53100', '53200', '58030']);
export const RETRY_SQLSTATES = new Set(['40001', '40P01']);

export function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for failures to reach the server (not for SQL errors). */
export function isConnectionError(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const code = errCode(err);
  if (code !== undefined) {
    if (CONNECTION_ERRNOS.has(code)) return true;
    if (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code)) return true;
  }
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0 && inner.every(isConnectionError)) return true;
  const message = (err as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down)/i.test(
      message,
    )
  );
}

function unavailable(err: unknown): StoreUnavailableError {
  const m = err instanceof Error && err.message ? err.message : String(errCode(err) ?? err);
  return new StoreUnavailableError(`postgres unavailable: ${m}`, err);
}

/** A connection failure becomes StoreUnavailableError; anything else is returned as it is. */
export function translatePgError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (isConnectionError(err)) return unavailable(err);
  return err;
}
