/**
 * Error classification of the SQLite adapter (see sqlite-event-store.ts): lock and I/O trouble
 * becomes StoreUnavailableError; the port's own errors and anything else are left as they are.
 */
import { DuplicateEventIdError, StoreUnavailableError, WrongExpectedRevisionError } from '../port';

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Lock or I/O trouble: the caller should retry later (and not commit its input offsets). */
function isTransient(code: string | undefined): boolean {
  return (
    code !== undefined &&
    /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|NOLFS)/.test(code)
  );
}

export function translateSqliteError(err: unknown): unknown {
  if (
    err instanceof WrongExpectedRevisionError ||
    err instanceof DuplicateEventIdError ||
    err instanceof StoreUnavailableError
  ) {
    return err;
  }
  const code = sqliteCode(err);
  if (isTransient(code)) return new StoreUnavailableError(`sqlite: ${(err as Error).message}`, err);
  return err;
}

/** Another connection holds the write lock (SQLITE_BUSY and its extended codes), untranslated. */
export function isLockHeld(err: unknown): boolean {
  return /^SQLITE_BUSY/.test(sqliteCode(err) ?? '');
}
