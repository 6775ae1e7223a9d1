import { type Catalog, type SpaceCommand, catalogVersionAt } from '@metering/domain';
import { DuplicateEventIdError, WrongExpectedRevisionError } from '@metering/event-store';
import type { BalanceQueries, PositionStore } from '../projection/balance-read-model';
import type { Clock } from '../infra/clock';
import type { IngestService } from '../ingest/ingest.service';

export interface SchedulerLogger {
  error(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
}

/**
 * Appends period resets at their boundaries, and activates subscription changes that were decided
 * before they took effect (re-evaluating thresholds under their limits). Each tick asks the read
 * model which Spaces are due and lets the domain decide every missed boundary, in order. The domain knows the last
 * reset recorded and ids are deterministic, so a reset is never appended twice, even by several
 * schedulers at once (optimistic concurrency on the Space stream).
 */
/** Read-model position name: the catalog version whose allowances every Space was re-evaluated under. */
export const ALLOWANCES_POSITION = 'allowances';

export class ResetScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly readModel: BalanceQueries & PositionStore,
    private readonly ingest: IngestService,
    private readonly clock: Clock,
    private readonly logger: SchedulerLogger,
    private readonly intervalMs: number,
    private readonly pageSize = 500,
    /** Told the types of the events each tick appended (metrics). */
    private readonly onRecorded: (types: string[]) => void = () => undefined,
    /** The catalog in force (allowance changes reach every Space when a version takes effect). */
    private readonly catalog: (() => Promise<Catalog> | Catalog) | null = null,
  ) {}

  start(): void {
    const loop = () => {
      this.timer = setTimeout(async () => {
        await this.tick().catch((err) => this.logger.error({ err }, 'scheduler tick failed'));
        if (this.timer) loop();
      }, this.intervalMs);
    };
    void this.tick().catch((err) => this.logger.error({ err }, 'scheduler tick failed'));
    loop();
  }

  /** One pass: appends every due reset. Returns how many Spaces were reset. */
  tick(): Promise<number> {
    if (!this.running)
      this.running = this.runOnce().finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async runOnce(): Promise<number> {
    const total = await this.resetsPass();
    await this.allowancesPass().catch((err) => this.logger.error({ err }, 'allowance re-evaluation failed; retried next tick'));
    return total;
  }

  /**
   * When a catalog version takes effect, every Space's thresholds are re-evaluated under the
   * allowances it brings (ReevaluateAllowances: re-armed where usage is now under, fired where now
   * reached; deterministic ids, so several schedulers or a retry change nothing twice). The version
   * handled last is kept next to the read model; a store that never had the pass adopts the version
   * in force (everything decided so far already used it).
   */
  private async allowancesPass(): Promise<void> {
    if (!this.catalog) return;
    const inForce = catalogVersionAt(await this.catalog(), this.clock.now()).version;
    const done = await this.readModel.getPosition(ALLOWANCES_POSITION);
    if (done === 0n) {
      await this.readModel.advancePosition(ALLOWANCES_POSITION, BigInt(inForce));
      return;
    }
    if (BigInt(inForce) <= done) return;
    let after = '';
    for (;;) {
      const ids = await this.readModel.spaceIdsAfter(after, this.pageSize);
      if (ids.length === 0) break;
      for (const spaceId of ids) {
        const outcome = await this.executeWithRetry(spaceId, { type: 'ReevaluateAllowances', spaceId, catalogVersion: inForce });
        if (outcome.outcome === 'accepted' && outcome.recorded.length) {
          this.onRecorded(outcome.recorded);
          this.logger.info({ spaceId, recorded: outcome.recorded, catalogVersion: inForce }, 'thresholds re-evaluated under a new catalog version');
        }
      }
      after = ids[ids.length - 1];
    }
    await this.readModel.advancePosition(ALLOWANCES_POSITION, BigInt(inForce));
  }

  private async resetsPass(): Promise<number> {
    let total = 0;
    const seen = new Set<string>();
    for (;;) {
      const now = this.clock.now();
      // The read model may not have applied this tick's resets yet, so the Spaces already handled
      // can come back first: ask for them plus a page (dueForReset has no cursor), and stop once a
      // page holds nothing new and is not full.
      const limit = seen.size + this.pageSize;
      const page = await this.readModel.dueForReset(now, limit);
      const due = page.filter((s) => !seen.has(s));
      if (due.length === 0) break;
      for (const spaceId of due) {
        seen.add(spaceId);
        let outcome;
        try {
          outcome = await this.resetSpace(spaceId);
        } catch (err) {
          // One Space failing (store error) does not hold back the others; it is due again next tick.
          this.logger.error({ err, spaceId }, 'scheduled reset failed; retried next tick');
          continue;
        }
        if (outcome.outcome === 'accepted' && outcome.recorded.length) {
          total++;
          this.onRecorded(outcome.recorded);
          this.logger.info({ spaceId, recorded: outcome.recorded, position: outcome.position }, 'scheduled events appended (resets, activations)');
        }
      }
    }
    return total;
  }

  /**
   * Decides and appends the Space's due resets. Another scheduler replica may have appended some of
   * them since this one last read the stream: the ingest service re-decides on a revision conflict,
   * and a decision made on a state that misses a reset already stored (the same deterministic id)
   * is refused by the store as a duplicate id, which means the same: read again and decide again.
   */
  private resetSpace(spaceId: string) {
    return this.executeWithRetry(spaceId, { type: 'ResetDuePeriods', spaceId });
  }

  private async executeWithRetry(spaceId: string, command: SpaceCommand) {
    for (let attempt = 1; ; attempt++) {
      try {
        // `current`: decided on the stream as stored when the cached state finds nothing to do
        // (another replica may have appended since this process cached the Space).
        const [outcome] = await this.ingest.executeForSpace(spaceId, [command], { current: true });
        return outcome;
      } catch (err) {
        const conflict = err instanceof DuplicateEventIdError || err instanceof WrongExpectedRevisionError;
        if (!conflict || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 5 * attempt * Math.random()));
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
