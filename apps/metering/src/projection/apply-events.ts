/**
 * How stored events change read-model rows, independent of the database: adapters load the rows an
 * event touches through `RowAccess`, and this code decides the new values. Keeps SQLite and
 * PostgreSQL read models identical field for field.
 */
import {
  type PeriodResetData,
  type Pool,
  type SpaceEvent,
  type SubscriptionActivatedData,
  type SubscriptionChangedData,
  type ThresholdCrossedData,
  type ThresholdRearmedData,
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
  putThreshold(row: ThresholdRow): void;
  /** Every use recorded for the Space (occurredAt, pool, amount), stored and pending. */
  usageItems(spaceId: string): UsageItemRow[];
  addUsageItem(row: UsageItemRow): void;
  /** Replaces all of a Space's per-period usage rows (after its timeline changed). */
  replaceUsage(spaceId: string, rows: UsageRow[]): void;
}

export interface UsageItemRow {
  spaceId: string;
  /** Global position of the event that recorded it. */
  position: bigint;
  occurredAt: number;
  pool: Pool;
  amount: number;
}

/** How an adapter reads stored rows; each call returns a fresh object the batch may change. */
export interface StoredRows {
  space(spaceId: string): SpaceRow | null;
  usage(spaceId: string, periodStart: number): UsageRow | null;
  items(spaceId: string): UsageItemRow[];
}

/**
 * The rows one `apply` batch touches, kept in memory so each is written once at the end of the
 * batch's transaction. Both read models use it; they differ only in how stored rows are loaded
 * and how the result is written.
 */
export class BatchRows implements RowAccess {
  readonly spaces = new Map<string, SpaceRow>();
  readonly usage = new Map<string, UsageRow>();
  readonly thresholds = new Map<string, ThresholdRow>();
  readonly newItems: UsageItemRow[] = [];
  /** Spaces whose usage rows were all replaced (their stored rows are deleted before writing). */
  readonly replaced = new Set<string>();
  /** Per-Space indexes, so a batch of any size stays linear. */
  private readonly usageKeys = new Map<string, Set<string>>();
  private readonly itemsOf = new Map<string, UsageItemRow[]>();
  private readonly storedItems = new Map<string, UsageItemRow[]>();

  constructor(private readonly stored: StoredRows) {}

  /** Rows buffered: a caller applying many pages into one batch flushes when this grows large. */
  get size(): number {
    return this.newItems.length + this.spaces.size + this.usage.size + this.thresholds.size;
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
    const row = this.usage.get(k);
    if (row) return row;
    if (this.replaced.has(spaceId)) return null;
    return this.stored.usage(spaceId, periodStart);
  }

  putUsage(row: UsageRow): void {
    const k = `${row.spaceId}|${row.periodStart}`;
    this.usage.set(k, row);
    let keys = this.usageKeys.get(row.spaceId);
    if (!keys) this.usageKeys.set(row.spaceId, (keys = new Set()));
    keys.add(k);
  }

  putThreshold(row: ThresholdRow): void {
    this.thresholds.set(`${row.spaceId}|${row.periodStart}|${row.pool}|${row.threshold}`, row);
  }

  usageItems(spaceId: string): UsageItemRow[] {
    let stored = this.storedItems.get(spaceId);
    if (!stored) this.storedItems.set(spaceId, (stored = this.stored.items(spaceId)));
    const pending = this.itemsOf.get(spaceId);
    return pending ? [...stored, ...pending] : [...stored];
  }

  addUsageItem(row: UsageItemRow): void {
    this.newItems.push(row);
    const list = this.itemsOf.get(row.spaceId);
    if (list) list.push(row);
    else this.itemsOf.set(row.spaceId, [row]);
  }

  replaceUsage(spaceId: string, rows: UsageRow[]): void {
    this.replaced.add(spaceId);
    for (const k of this.usageKeys.get(spaceId) ?? []) this.usage.delete(k);
    this.usageKeys.delete(spaceId);
    for (const row of rows) this.putUsage(row);
  }
}

/** Per-period usage of a Space from its items, attributed with the Space's current timeline. */
export function attribute(space: SpaceRow, items: UsageItemRow[]): UsageRow[] {
  const rows = new Map<number, UsageRow>();
  for (const item of items) {
    const period = periodAt(space.timeline, item.occurredAt);
    let row = rows.get(period.start);
    if (!row) {
      row = { spaceId: space.spaceId, periodStart: period.start, periodEnd: period.end, used: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 0 };
      rows.set(period.start, row);
    }
    row.used[item.pool] += item.amount;
    row.usageEvents += 1;
  }
  return [...rows.values()].sort((a, b) => a.periodStart - b.periodStart);
}

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
      space.timeline = withSubscriptionChange(space.timeline, event.data as unknown as SubscriptionChangedData);
      // Usage counts in the period of the current timeline that contains its occurredAt.
      const items = rows.usageItems(spaceId);
      if (items.length) rows.replaceUsage(spaceId, attribute(space, items));
      break;
    }
    case 'GenerationRecorded':
    case 'BatchExportRecorded': {
      const { at: occurredAt, pool, amount } = usageItemOf({ type: event.type, data: event.data } as unknown as Extract<SpaceEvent, { type: typeof event.type }>);
      rows.addUsageItem({ spaceId, position: event.globalPosition, occurredAt, pool, amount });
      const period = periodAt(space.timeline, occurredAt);
      const row = rows.getUsage(spaceId, period.start) ?? {
        spaceId,
        periodStart: period.start,
        periodEnd: period.end,
        used: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 },
        usageEvents: 0,
      };
      row.periodEnd = period.end;
      row.used = { ...row.used, [pool]: row.used[pool] + amount };
      row.usageEvents += 1;
      rows.putUsage(row);
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
