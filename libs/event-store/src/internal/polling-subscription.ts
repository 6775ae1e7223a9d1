/**
 * Catch-up subscription by polling `readAll` pages from a checkpoint. Used by the SQLite and
 * PostgreSQL adapters (their readAll never returns an event before an earlier one is visible,
 * so advancing the checkpoint to the last delivered event is safe).
 */
import { ReadAllOptions, StoreUnavailableError, StoredEvent, SubscribeOptions, Subscription } from '../port';

export type ReadPage = (options: ReadAllOptions) => Promise<StoredEvent[]>;

const DEFAULT_POLL_MS = 200;
const DEFAULT_BATCH = 256;
const MAX_BACKOFF_MS = 5_000;

/** Wakes every live subscription of one store instance. */
export class Wakers {
  private readonly set = new Set<() => void>();
  add(fn: () => void): () => void {
    this.set.add(fn);
    return () => this.set.delete(fn);
  }
  wakeAll(): void {
    for (const fn of this.set) fn();
  }
}

export function reportUnhandled(err: unknown): void {
  // No onError given: never fail silently, a stopped subscription stalls its projection.
  console.error('[event-store] subscription stopped:', err);
}

/** Calls an error callback without letting its own failure escape. */
export function safeCall(onError: (err: unknown) => void, err: unknown): void {
  try {
    onError(err);
  } catch (e) {
    reportUnhandled(e);
  }
}

export class PollingSubscription implements Subscription {
  private stopped = false;
  private wakePending = false;
  private wakeSleeper: (() => void) | null = null;
  private readonly done: Promise<void>;
  private readonly unregister: () => void;

  constructor(
    private readonly readPage: ReadPage,
    private readonly options: SubscribeOptions,
    wakers: Wakers,
  ) {
    if (typeof options.handler !== 'function') throw new TypeError('subscribe: handler must be a function');
    const { batchSize, pollIntervalMs } = options;
    if (batchSize !== undefined && (!Number.isSafeInteger(batchSize) || batchSize < 1)) {
      throw new TypeError('subscribe: batchSize must be an integer >= 1');
    }
    if (pollIntervalMs !== undefined && (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 0)) {
      throw new TypeError('subscribe: pollIntervalMs must be a number >= 0');
    }
    this.unregister = wakers.add(() => this.wake());
    this.done = this.run();
  }

  private wake(): void {
    this.wakePending = true;
    const w = this.wakeSleeper;
    this.wakeSleeper = null;
    w?.();
  }

  /** Sleeps up to `ms`, or less when woken (notify or stop). */
  private sleep(ms: number): Promise<void> {
    if (this.wakePending || this.stopped) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeSleeper = null;
        resolve();
      }, ms);
      this.wakeSleeper = () => {
        clearTimeout(timer);
        this.wakePending = false;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    // Let the constructor return before the first read (the caller may still be wiring up).
    await Promise.resolve();
    const { handler, onError = reportUnhandled, streamPrefix, types } = this.options;
    const pollMs = this.options.pollIntervalMs ?? DEFAULT_POLL_MS;
    const batchSize = this.options.batchSize ?? DEFAULT_BATCH;
    let checkpoint = this.options.after;
    let failures = 0;
    while (!this.stopped) {
      let page: StoredEvent[];
      try {
        this.wakePending = false;
        page = await this.readPage({ after: checkpoint, maxCount: batchSize, streamPrefix, types });
        failures = 0;
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          // Transient: keep the checkpoint and retry with a capped backoff.
          failures++;
          await this.sleep(Math.min(MAX_BACKOFF_MS, pollMs * 2 ** Math.min(failures, 10)));
          continue;
        }
        this.stopped = true;
        safeCall(onError, err);
        break;
      }
      if (this.stopped) break;
      if (page.length === 0) {
        await this.sleep(pollMs);
        continue;
      }
      try {
        await handler(page);
      } catch (err) {
        this.stopped = true;
        safeCall(onError, err);
        break;
      }
      checkpoint = page[page.length - 1].globalPosition;
      // Yield to the event loop between pages: a synchronous store (SQLite) and a synchronous
      // handler would otherwise catch up a long backlog without ever letting timers or I/O run.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.unregister();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    return this.done;
  }
}

/**
 * Starts a polling subscription over `read` and tracks it in `registry` (the store stops every
 * tracked subscription on close). Stopping it removes it from the registry.
 */
export function startTrackedPolling(read: ReadPage, options: SubscribeOptions, wakers: Wakers, registry: Set<Subscription>): Subscription {
  const sub = new PollingSubscription(read, options, wakers);
  const tracked: Subscription = {
    stop: async () => {
      registry.delete(tracked);
      await sub.stop();
    },
  };
  registry.add(tracked);
  return tracked;
}
