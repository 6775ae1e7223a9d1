/**
 * One Space held by the entitlement view: its read-model row and its usage from the running period
 * on. The projection's fold (`applyEvent`) writes into it (it is its own RowAccess and SpaceAccess),
 * and the domain's check reads it (UsageSource).
 */
import { type Limits, type Period, type PeriodUsage, type UsageSource, periodFinder, emptyLimits } from '@metering/domain';
import { type FoldedEvent, type RowAccess, type SpaceAccess, applyEvent } from './apply-events';
import type { SpaceRow, ThresholdRow, UsageRow } from './balance-read-model';

/** A stored usage row in the domain's shape. */
export const periodUsageOf = (r: UsageRow): PeriodUsage => ({ start: r.periodStart, end: r.periodEnd, used: r.used, usageEvents: r.usageEvents });

const ZERO: Limits = Object.freeze(emptyLimits());

/** One Space in the view; it is its own RowAccess and SpaceAccess (the fold writes into it) and UsageSource. */
export class Entry implements RowAccess, SpaceAccess, UsageSource {
  /** Last use (the view's use counter): the least recently used entries are evicted first. */
  tick = 0;
  /** The domain's finder of the row's timeline as it was last asked (see `periodAt`). */
  private finder: ReturnType<typeof periodFinder> | null = null;

  constructor(
    public row: SpaceRow,
    /** Usage of periods starting at or after this is complete. */
    public fromPeriod: number,
    /** Usage from fromPeriod on, in the domain's shape (usually one: a small array costs less memory than a Map per Space). */
    public periods: PeriodUsage[],
  ) {}

  private find(periodStart: number): PeriodUsage | undefined {
    const ps = this.periods;
    for (let i = 0; i < ps.length; i++) if (ps[i].start === periodStart) return ps[i];
    return undefined;
  }

  get timeline() {
    return this.row.timeline;
  }

  usedIn(periodStart: number): Limits {
    return this.find(periodStart)?.used ?? ZERO;
  }

  // RowAccess: a view entry holds one Space.
  space(): SpaceAccess {
    return this;
  }
  putThreshold(_row: ThresholdRow): void {
    // The check does not read thresholds.
  }
  clearThresholds(_spaceId: string, _periodStart: number): void {
    // The check does not read thresholds.
  }

  // SpaceAccess: the row is always held.
  get revision(): number {
    return this.row.revision;
  }
  set revision(r: number) {
    this.row.revision = r;
  }
  /** The period that contains t: the domain's finder of the row's timeline, kept while the timeline is the same object (timelines are replaced, never changed in place). */
  periodAt(t: number): Period {
    const timeline = this.row.timeline;
    if (this.finder === null || this.finder.timeline !== timeline) this.finder = periodFinder(timeline);
    return this.finder.at(t);
  }

  periodOfUse(at: number): Period {
    return this.periodAt(at);
  }
  usage(periodStart: number): PeriodUsage | null {
    return this.find(periodStart) ?? null;
  }
  /** The entry holds every usage of the Space: nothing to read. */
  usageToAdd(periodStart: number): PeriodUsage | null {
    return this.usage(periodStart);
  }

  setUsage(periodStart: number, usage: PeriodUsage | null): void {
    // Periods before fromPeriod are not kept (never asked; a move into one changes nothing here).
    if (periodStart < this.fromPeriod) return;
    const i = this.periods.findIndex((p) => p.start === periodStart);
    if (usage === null) {
      if (i >= 0) this.periods = this.periods.filter((p) => p.start !== periodStart);
    } else if (i >= 0) this.periods[i] = usage;
    else this.periods.push(usage);
  }

  /** Applies a Space event unless the entry already has it (idempotent by stream revision). */
  apply(e: FoldedEvent): void {
    if (e.revision <= this.row.revision) return;
    applyEvent(this, e);
  }
}
