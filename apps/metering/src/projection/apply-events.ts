/**
 * How stored events change read-model rows, independent of the database: adapters load the rows an
 * event touches through `RowAccess`, and this code decides the new values. Keeps SQLite and
 * PostgreSQL read models identical field for field.
 */
import {
  type PeriodResetData,
  type SpaceEvent,
  type SubscriptionActivatedData,
  type SubscriptionChangedData,
  type ThresholdCrossedData,
  type ThresholdRearmedData,
  addUse,
  applyPeriodMove,
  nextWakeUp,
  periodAt,
  usageItemOf,
  withActivation,
  withSubscriptionChange,
} from '@metering/domain';
import type { StoredEvent } from '@metering/event-store';
import type { SpaceRow, ThresholdRow, UsageRow } from './balance-read-model';

export interface RowAccess {
  getSpace(spaceId: string): SpaceRow | null;
  putSpace(row: SpaceRow): void;
  getUsage(spaceId: string, periodStart: number): UsageRow | null;
  putUsage(row: UsageRow): void;
  /** The period's row goes away (a move left it with no usage). */
  deleteUsage(spaceId: string, periodStart: number): void;
  putThreshold(row: ThresholdRow): void;
}

/** How an adapter reads stored rows; each call returns a fresh object the batch may change. */
export interface StoredRows {
  space(spaceId: string): SpaceRow | null;
  usage(spaceId: string, periodStart: number): UsageRow | null;
}

/**
 * The rows one `apply` batch touches, kept in memory so each is written once at the end of the
 * batch's transaction. Both read models use it; they differ only in how stored rows are loaded
 * and how the result is written. A usage row set to null is deleted.
 */
export class BatchRows implements RowAccess {
  readonly spaces = new Map<string, SpaceRow>();
  readonly usage = new Map<string, UsageRow | null>();
  readonly thresholds = new Map<string, ThresholdRow>();

  constructor(private readonly stored: StoredRows) {}

  /** Rows buffered: a caller applying many pages into one batch flushes when this grows large. */
  get size(): number {
    return this.spaces.size + this.usage.size + this.thresholds.size;
  }

  getSpace(spaceId: string): SpaceRow | null {
    return this.spaces.get(spaceId) ?? this.stored.space(spaceId);
  }

  putSpace(row: SpaceRow): void {
    this.spaces.set(row.spaceId, row);
  }

  /** The Space rows to write, each with its derived nextResetAt brought up to date. */
  spacesToWrite(): SpaceRow[] {
    const out = [...this.spaces.values()];
    for (const row of out) row.nextResetAt = nextResetOf(row);
    return out;
  }

  getUsage(spaceId: string, periodStart: number): UsageRow | null {
    const k = `${spaceId}|${periodStart}`;
    if (this.usage.has(k)) return this.usage.get(k) ?? null;
    return this.stored.usage(spaceId, periodStart);
  }

  putUsage(row: UsageRow): void {
    this.usage.set(`${row.spaceId}|${row.periodStart}`, row);
  }

  deleteUsage(spaceId: string, periodStart: number): void {
    this.usage.set(`${spaceId}|${periodStart}`, null);
  }

  /** Usage rows to write, and the (spaceId, periodStart) keys of rows to delete. */
  usageChanges(): { put: UsageRow[]; deleted: { spaceId: string; periodStart: number }[] } {
    const put: UsageRow[] = [];
    const deleted: { spaceId: string; periodStart: number }[] = [];
    for (const [k, row] of this.usage) {
      if (row) put.push(row);
      else {
        const i = k.lastIndexOf('|');
        deleted.push({ spaceId: k.slice(0, i), periodStart: Number(k.slice(i + 1)) });
      }
    }
    return { put, deleted };
  }

  putThreshold(row: ThresholdRow): void {
    this.thresholds.set(`${row.spaceId}|${row.periodStart}|${row.pool}|${row.threshold}`, row);
  }
}

const toRow = (spaceId: string, p: { start: number; end: number | null; used: UsageRow['used']; usageEvents: number }): UsageRow => ({
  spaceId,
  periodStart: p.start,
  periodEnd: p.end,
  used: p.used,
  usageEvents: p.usageEvents,
});
const fromRow = (r: UsageRow) => ({ start: r.periodStart, end: r.periodEnd, used: { ...r.used }, usageEvents: r.usageEvents });

const newSpace = (spaceId: string): SpaceRow => ({ spaceId, timeline: [], lastResetAt: null, nextResetAt: null, revision: -1 });

/** When the scheduler must next look at the Space: its next reset or a pending activation. */
export function nextResetOf(row: SpaceRow): number | null {
  return nextWakeUp(row.timeline, row.lastResetAt);
}

export function applyEvent(rows: RowAccess, event: StoredEvent): void {
  if (!event.streamName.startsWith('space-')) return;
  const spaceId = (event.data as { spaceId?: string }).spaceId ?? event.streamName.slice('space-'.length);
  const space = rows.getSpace(spaceId) ?? newSpace(spaceId);
  space.revision = event.revision;
  switch (event.type) {
    case 'SubscriptionChanged': {
      const d = event.data as unknown as SubscriptionChangedData;
      space.timeline = withSubscriptionChange(space.timeline, d);
      // The decision recorded how the change moved usage between periods; events written before
      // moves were recorded get them from `withLegacyMoves` before they reach here.
      if (!d.moves) throw new Error(`SubscriptionChanged ${event.id} of ${event.streamName} has no recorded moves (pass its page through withLegacyMoves)`);
      for (const m of d.moves) {
        const start = Date.parse(m.periodStart);
        const current = rows.getUsage(spaceId, start);
        const next = applyPeriodMove(current ? fromRow(current) : null, m);
        if (next) rows.putUsage(toRow(spaceId, next));
        else rows.deleteUsage(spaceId, start);
      }
      break;
    }
    case 'GenerationRecorded':
    case 'BatchExportRecorded': {
      const { at, pool, amount } = usageItemOf({ type: event.type, data: event.data } as unknown as Extract<SpaceEvent, { type: typeof event.type }>);
      const period = periodAt(space.timeline, at);
      const current = rows.getUsage(spaceId, period.start);
      rows.putUsage(toRow(spaceId, addUse(current ? fromRow(current) : null, period, pool, amount)));
      break;
    }
    case 'SubscriptionActivated': {
      space.timeline = withActivation(space.timeline, (event.data as unknown as SubscriptionActivatedData).sourceEventId);
      break;
    }
    case 'PeriodReset': {
      const d = event.data as unknown as PeriodResetData;
      const start = Date.parse(d.periodStart);
      space.lastResetAt = space.lastResetAt === null ? start : Math.max(space.lastResetAt, start);
      break;
    }
    case 'ThresholdCrossed':
    case 'ThresholdRearmed': {
      const d = event.data as unknown as ThresholdCrossedData | ThresholdRearmedData;
      rows.putThreshold({
        spaceId,
        periodStart: Date.parse(d.periodStart),
        pool: d.pool,
        threshold: d.threshold,
        state: event.type === 'ThresholdCrossed' ? 'fired' : 'rearmed',
        eventId: event.id,
      });
      break;
    }
    default:
      break;
  }
  // nextResetAt is derived: BatchRows.spacesToWrite() sets it once per Space per batch.
  rows.putSpace(space);
}
