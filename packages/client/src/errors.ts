import type { ErrorItem } from './types';

/** Every error the client throws. `status` is the HTTP status when there was an answer. */
export class MeteringError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The service refused the request or the event: each error names the field and the rule. Not retried. */
export class MeteringRejectedError extends MeteringError {
  readonly kind = 'rejected' as const;
  constructor(
    readonly errors: ErrorItem[],
    status?: number,
    body?: unknown,
    readonly eventId?: string,
  ) {
    super(`rejected: ${errors.map((e) => `${e.field || '(body)'} ${e.rule}: ${e.message}`).join('; ')}`, status, body);
  }
  /** The first error's field, e.g. "cycle". */
  get field(): string | undefined {
    return this.errors[0]?.field;
  }
  /** The first error's rule, e.g. "plan_cycle_exists". */
  get rule(): string | undefined {
    return this.errors[0]?.rule;
  }
}

/** This eventId was recorded before with a different payload: one id, one fact. Not retried. */
export class MeteringConflictError extends MeteringError {
  readonly kind = 'conflict' as const;
  constructor(
    message: string,
    readonly eventId: string | undefined,
    status?: number,
    body?: unknown,
  ) {
    super(message, status, body);
  }
}

/** 401 (no key, or a key that is not valid) or 403 (the key lacks `requiredScope`). Not retried. */
export class MeteringUnauthorizedError extends MeteringError {
  readonly kind = 'unauthorized' as const;
  constructor(
    message: string,
    status: number,
    readonly requiredScope?: string,
    body?: unknown,
  ) {
    super(message, status, body);
  }
}

/** The service could not be reached or answered 5xx/429, after every retry. */
export class MeteringUnavailableError extends MeteringError {
  readonly kind = 'unavailable' as const;
  constructor(
    message: string,
    readonly attempts: number,
    status?: number,
    body?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, status, body, options);
  }
}

/** Rules the service names when an eventId is reused with another payload. */
export const CONFLICT_RULES: ReadonlySet<string> = new Set(['event_id_conflict', 'conflict', 'same_id_different_payload']);

export function isConflict(errors: ErrorItem[] | undefined): boolean {
  return !!errors?.some((e) => CONFLICT_RULES.has(e.rule) || (e.field === 'eventId' && /conflict/i.test(e.rule)));
}
