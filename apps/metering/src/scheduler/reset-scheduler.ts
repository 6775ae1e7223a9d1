import type { BalanceReadModel } from '../projection/balance-read-model';
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
export class ResetScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly readModel: BalanceReadModel,
    private readonly ingest: IngestService,
    private readonly clock: Clock,
    private readonly logger: SchedulerLogger,
    private readonly intervalMs: number,
    private readonly pageSize = 500,
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
    let total = 0;
    const seen = new Set<string>();
    for (;;) {
      const now = this.clock.now();
      const due = (await this.readModel.dueForReset(now, this.pageSize)).filter((s) => !seen.has(s));
      if (due.length === 0) break;
      for (const spaceId of due) {
        seen.add(spaceId);
        const [outcome] = await this.ingest.executeForSpace(spaceId, [{ type: 'ResetDuePeriods', spaceId }]);
        if (outcome.outcome === 'accepted' && outcome.recorded.length) {
          total++;
          this.logger.info({ spaceId, recorded: outcome.recorded }, 'scheduled events appended (resets, activations)');
        }
      }
    }
    return total;
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
