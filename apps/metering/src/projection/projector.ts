import { SPACE_STREAM_PREFIX } from '@metering/domain';
import type { EventStore, Subscription } from '@metering/event-store';
import type { BalanceProjection } from './balance-read-model';
import { withLegacyMoves } from './legacy-moves';
import type { ProjectionFollower } from './breakdown/breakdown'; // issue-15: read models fed the same pages

export interface ProjectorLogger {
  error(obj: unknown, msg?: string): void;
  info?(obj: unknown, msg?: string): void;
}

/**
 * Keeps the balance read model up to date: a catch-up subscription from the read model's own
 * checkpoint (stored with the rows, in the same transaction). Restarts after an error.
 */
export class Projector {
  private sub: Subscription | null = null;
  private position = 0n;
  private waiters: { position: bigint; resolve: () => void }[] = [];
  private stopped = false;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Ends the current linger early (a waiter, stop); null when not lingering. */
  private endLinger: (() => void) | null = null;
  /** Pages and events applied since construction, and the time spent applying them (benchmarks read it). */
  readonly applied = { pages: 0, events: 0, ms: 0 };

  constructor(
    private readonly store: EventStore,
    private readonly readModel: BalanceProjection,
    private readonly logger: ProjectorLogger,
    private readonly pollIntervalMs = 200,
    private readonly batchSize = 1000,
    /** issue-15: read models with checkpoints of their own (the usage breakdown) applied from the same pages, after the balances. */
    private readonly followers: readonly ProjectionFollower[] = [],
    /**
     * After a page of at least a tenth of `batchSize` events that did not fill `batchSize` (the
     * projection keeps up with a heavy ingest, page by page), wait up to this long before reading
     * the next one, so the next page holds more events. A page writes each row its events touch
     * once (a Space's revision, its period's usage, its breakdown rows), so its cost grows with
     * the Spaces it touches more than with its events: with 100,000 Spaces, pages of about 1,300
     * events rewrote about a row page per event. Light traffic (smaller pages) never waits, and a
     * `waitFor` (read-your-writes) or `stop` ends the wait at once. 0: never wait.
     */
    private readonly lingerMs = 0,
  ) {
    if (!Number.isFinite(lingerMs) || lingerMs < 0) throw new TypeError('Projector: lingerMs must be a number >= 0');
  }

  /** issue-15: applies a page to the balances, then to each follower (each skips what it already has). */
  private async applyPage(page: Parameters<BalanceProjection['apply']>[0]): Promise<void> {
    // Events written before usage moves were recorded get them first (see legacy-moves.ts).
    const started = performance.now();
    const events = await withLegacyMoves(this.store, page);
    await this.readModel.apply(events);
    for (const f of this.followers) await f.apply(events);
    this.applied.pages++;
    this.applied.events += page.length;
    this.applied.ms += performance.now() - started;
  }

  get checkpoint(): bigint {
    return this.position;
  }

  /** Applies everything already stored, then follows new events. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.catchUp();
    this.follow();
  }

  /** Reads and applies pages until the head, synchronously with the caller. */
  async catchUp(): Promise<number> {
    let applied = 0;
    this.position = await this.readModel.checkpoint();
    // issue-15: start from the lowest checkpoint, so a follower that is behind (new, or cleared) catches up.
    for (const f of this.followers) {
      const at = await f.checkpoint();
      if (at < this.position) this.position = at;
    }
    for (;;) {
      const page = await this.store.readAll({ after: this.position, maxCount: this.batchSize, streamPrefix: SPACE_STREAM_PREFIX });
      if (page.length === 0) break;
      await this.applyPage(page);
      applied += page.length;
      this.advance(page[page.length - 1].globalPosition);
    }
    return applied;
  }

  private follow(): void {
    this.sub = this.store.subscribe({
      after: this.position,
      streamPrefix: SPACE_STREAM_PREFIX,
      pollIntervalMs: this.pollIntervalMs,
      batchSize: this.batchSize,
      handler: async (events) => {
        await this.applyPage(events);
        this.advance(events[events.length - 1].globalPosition);
        if (this.shouldLinger(events.length)) await this.linger();
      },
      onError: (err) => {
        this.logger.error({ err }, 'projection failed; restarting from its checkpoint in 1 s');
        this.sub = null;
        if (!this.stopped)
          this.restartTimer = setTimeout(() => {
            this.restartTimer = null;
            this.start().catch((e) => this.logger.error({ err: e }, 'projection restart failed'));
          }, 1000);
      },
    });
  }

  /** See `lingerMs`: a page of a heavy ingest that did not fill the page size, and nobody waiting. */
  shouldLinger(pageLength: number): boolean {
    return this.lingerMs > 0 && !this.stopped && this.waiters.length === 0 && pageLength < this.batchSize && pageLength * 10 >= this.batchSize;
  }

  private linger(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.endLinger?.(), this.lingerMs);
      this.endLinger = () => {
        clearTimeout(timer);
        this.endLinger = null;
        resolve();
      };
    });
  }

  private advance(to: bigint): void {
    if (to > this.position) this.position = to;
    const ready = this.waiters.filter((w) => w.position <= this.position);
    this.waiters = this.waiters.filter((w) => w.position > this.position);
    for (const w of ready) w.resolve();
  }

  /** Resolves true once the read model has applied `position`, false after the timeout. */
  waitFor(position: bigint, timeoutMs = 5000): Promise<boolean> {
    if (position <= this.position) return Promise.resolve(true);
    this.store.notify?.();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = { position, resolve: () => (clearTimeout(timer), resolve(true)) };
      this.waiters.push(waiter);
      this.endLinger?.();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.endLinger?.();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.sub?.stop();
    this.sub = null;
  }
}
