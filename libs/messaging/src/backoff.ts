import type { RetryBackoff } from './port';

export const DEFAULT_BACKOFF: Required<RetryBackoff> = { initialDelayMs: 200, maxDelayMs: 30_000, factor: 2 };

/**
 * Delay before redelivery number `attempt` (1-based): initial x factor^(attempt-1), capped, with
 * up to 20 % random jitter taken off so that many failing partitions do not retry in lockstep.
 */
export function backoffDelay(attempt: number, retry: RetryBackoff = {}, random: () => number = Math.random): number {
  const initial = Math.max(1, retry.initialDelayMs ?? DEFAULT_BACKOFF.initialDelayMs);
  const max = Math.max(initial, retry.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs);
  const factor = Math.max(1, retry.factor ?? DEFAULT_BACKOFF.factor);
  const exponent = Math.max(0, Math.min(attempt - 1, 64));
  const raw = Math.min(max, initial * factor ** exponent);
  return Math.max(1, Math.round(raw * (1 - 0.2 * random())));
}
