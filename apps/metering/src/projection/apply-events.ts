/**
 * How stored events change read-model rows, independent of the database: adapters load the rows an
 * event touches through `RowAccess`, and this code decides the new values. Keeps SQLite and
 * PostgreSQL read models identical field for field.
 */
import {
  type PeriodUsage,
  addUse,
  emptyLimits,
  applyPeriodMove,
  decodeSpaceEvent,
  parseStoredInstant,
  parseStoredJson,
  type SpaceEvent,
  spaceIdOf,
  spaceIdOfStored,
  nextWakeUp,
  type Period,
  type PeriodFinder,
  periodFinder,
  usageItemOf,
  withActivation,
  withSubscriptionChange,
} from '@metering/domain';
import type { StoredEventJson } from '@metering/event-store';
import type { FoldedEvent, PageEvent, SpaceRow, ThresholdRow, UsageRow } from './balance-read-model';

export type { FoldedEvent, PageEvent } from './balance-read-model';

/**
 * The rows of one Space that `applyEvent` reads and changes. The Space row and every usage it
 * returns belong to the batch: the fold changes them in place (the domain's `addUse`).
 */
export interface SpaceAccess {
  /**
   * The Space row (a new one, revision -1, when the Space has none yet), read from the store the
   * first time it is asked for: a page of usage events on Spaces that already have a row never
   * reads it (see `periodOfUse`).
   */
  readonly row: SpaceRow;
  /** The stream revision of the Space's last event applied: written with the row at the end of the batch. */
  revision: number;
  /**
   * The period a use at `at` counts in: the domain's `periodAt` on the row's timeline when the row
   * is already read (or the Space is new), else the period its decision recorded in the event,
   * which is that same `periodAt` on the same timeline (the decider and this fold apply the same
   * events in the same order with the same domain functions): the row is not read for it.
   */
  periodOfUse(at: number, recorded: RecordedPeriod | null): Period;
  /**
   * The domain's `periodAt` on the row's timeline (its finder kept until the timeline changes).
   * Read-only: the same object may be returned again for another instant of the same period.
   */
  periodAt(t: number): Period;
  /**
   * The usage of the period that starts at `periodStart`, in the domain's shape; null when none.
   * The row is the batch's own (a stored one is kept in the batch once read): change it in place.
   */
  usage(periodStart: number): PeriodUsage | null;
  /**
   * The usage a use adds to (the domain's `addUse`, in place), null when none. Where the adapter
   * writes uses additively (`StoredRows.additive`), a period not yet read in the batch is not read
   * for it: the batch counts from zero and the adapter adds what it counted to the stored row.
   */
  usageToAdd(periodStart: number): PeriodUsage | null;
  /** Sets the period's usage; null: the period's row goes away (a move left it with no usage). */
  setUsage(periodStart: number, usage: PeriodUsage | null): void;
}

export interface RowAccess {
  /** The Space's rows; the Space row is written back whatever the event. */
  space(spaceId: string): SpaceAccess;
  putThreshold(row: ThresholdRow): void;
  /** Drops the Space's threshold rows of one period (a subscription change's `clearsPeriod`), before any put that follows. */
  clearThresholds(spaceId: string, periodStart: number): void;
}

/** How an adapter reads stored rows; each call returns a fresh object the batch may change. */
export interface StoredRows {
  space(spaceId: string): SpaceRow | null;
  usage(spaceId: string, periodStart: number): UsageRow | null;
  /**
   * True: the adapter writes `BatchRows.usageChanges().added` by adding them to the stored rows
   * (an upsert that adds), so a use on a period not read in the batch does not read it.
   */
  additive?: boolean;
}

const fromRow = (r: UsageRow): PeriodUsage => ({ start: r.periodStart, end: r.periodEnd, used: r.used, usageEvents: r.usageEvents });
/** A usage row a batch writes, with the revision of its Space's last event applied in the batch. */
export type UsageWrite = UsageRow & { revision: number };

const toWrite = (spaceId: string, p: PeriodUsage, revision: number): UsageWrite => ({ spaceId, periodStart: p.start, periodEnd: p.end, used: p.used, usageEvents: p.usageEvents, revision });

const newSpace = (spaceId: string): SpaceRow => ({ spaceId, timeline: [], lastResetAt: null, nextResetAt: null, revision: -1 });

/** The period a usage event's decision recorded (its ISO instants as stored). */
export interface RecordedPeriod {
  periodStart: string;
  periodEnd: string | null;
}

const USAGE_TYPES = new Set(['GenerationRecorded', 'BatchExportRecorded']);
/** Events whose fold reads or changes the Space row's timeline or resets. */
const ROW_TYPES = new Set(['SubscriptionChanged', 'SubscriptionActivated', 'PeriodReset']);

/**
 * The recorded period of a usage event's data (the data itself, no copy: this runs per event), or
 * null when it has none of the right types (then the row's timeline answers).
 */
export function recordedPeriodOf(data: { periodStart?: unknown; periodEnd?: unknown }): RecordedPeriod | null {
  const { periodStart, periodEnd } = data;
  if (typeof periodStart !== 'string' || !(periodEnd === null || typeof periodEnd === 'string')) return null;
  return data as RecordedPeriod;
}

/**
 * True when folding this stored event reads the Space's stored row: the Space's first event
 * (revision 0: its row is made), a change of timeline or resets, or a use without a recorded
 * period. A read model that loads rows ahead (PostgreSQL: one query per page) loads these Spaces'
 * rows; the others' are never asked for. Every Space with an event applied has a row (each event
 * writes its Space's row), so a later event (revision > 0) finds it there.
 */
export function spaceRowNeeded(event: Pick<FoldedEvent, 'type' | 'revision' | 'data'>): boolean {
  if (event.revision === 0 || ROW_TYPES.has(event.type)) return true;
  return USAGE_TYPES.has(event.type) && recordedPeriodOf(event.data) === null;
}

/**
 * The start of the one stored usage row folding this event reads when its Space row is not read
 * (`spaceRowNeeded` false for every event of its Space in the batch): a use counts in the period
 * its decision recorded. null: no usage row (not a use), or not known without the row (see
 * `spaceRowNeeded`). A read model that loads rows ahead loads these (Space, period) pairs, and every
 * usage row of the Spaces whose row it loads (their uses count where the timeline says, and a
 * subscription change moves usage between any of their periods).
 */
export function usagePeriodRead(event: Pick<FoldedEvent, 'type' | 'revision' | 'data'>): number | null {
  if (event.revision === 0 || !USAGE_TYPES.has(event.type)) return null;
  const recorded = recordedPeriodOf(event.data);
  return recorded === null ? null : parseStoredInstant(recorded.periodStart);
}

/** One Space's rows in a batch: its row (read when first needed), and its usage by period start (number keys, no key strings). */
class SpaceRows implements SpaceAccess {
  /** Usage by period start; null: delete the row. */
  readonly periods = new Map<number, PeriodUsage | null>();
  /**
   * Periods whose usage in `periods` counts from zero (uses added in this batch, the stored row not
   * read: `usageToAdd`): written by adding them to the stored row. Read when something else than a
   * use needs the period's whole usage (`usage`).
   */
  readonly added = new Set<number>();
  private finder: PeriodFinder | null = null;
  /** The period the finder last gave (periods of one timeline never overlap: it answers every instant inside it). */
  private period: Period | null = null;
  /** The period last asked for and its usage (most uses of a Space fall in the same period). */
  private lastStart = Number.NaN;
  private lastUsage: PeriodUsage | null = null;

  /**
   * What the stored row held when loaded (null: no stored row). When the timeline (same array:
   * the fold replaces it, never changes it in place) and lastResetAt are unchanged, so is the
   * derived nextResetAt: only the revision needs writing.
   */
  loaded: { timeline: SpaceRow['timeline']; lastResetAt: number | null; nextResetAt: number | null } | null = null;
  /** The row once read (undefined: not read; the Space's stored row stays as it is but for its revision). */
  private current: SpaceRow | undefined = undefined;
  revision = -1;

  constructor(
    readonly spaceId: string,
    private readonly stored: StoredRows,
    private readonly count: { periods: number },
  ) {}

  get isRead(): boolean {
    return this.current !== undefined;
  }

  get row(): SpaceRow {
    if (this.current === undefined) {
      const stored = this.stored.space(this.spaceId);
      this.current = stored ?? newSpace(this.spaceId);
      this.loaded = stored ? { timeline: stored.timeline, lastResetAt: stored.lastResetAt, nextResetAt: stored.nextResetAt } : null;
    }
    return this.current;
  }

  /** True when the stored row differs from this one in more than its revision (or there is none). */
  get changedBeyondRevision(): boolean {
    const l = this.loaded;
    return l === null || l.timeline !== this.row.timeline || l.lastResetAt !== this.row.lastResetAt;
  }

  periodOfUse(at: number, recorded: RecordedPeriod | null): Period {
    if (this.current !== undefined || recorded === null) return this.periodAt(at);
    return { start: parseStoredInstant(recorded.periodStart), end: recorded.periodEnd === null ? null : parseStoredInstant(recorded.periodEnd) };
  }

  periodAt(t: number): Period {
    const p = this.period;
    // No copy per use: the finder's answer is kept while the timeline is the finder's.
    if (p !== null && this.finder!.timeline === this.row.timeline && p.start <= t && (p.end === null || t < p.end)) return p;
    let f = this.finder;
    if (f === null || f.timeline !== this.row.timeline) this.finder = f = periodFinder(this.row.timeline);
    return (this.period = f.at(t));
  }

  usage(periodStart: number): PeriodUsage | null {
    if (this.added.has(periodStart)) this.readAdded(periodStart);
    if (periodStart === this.lastStart) return this.lastUsage;
    let p = this.periods.get(periodStart);
    if (p === undefined) {
      const r = this.stored.usage(this.spaceId, periodStart);
      // Kept in the batch from now on: the caller changes it in place.
      p = r === null ? null : fromRow(r);
      if (p !== null) this.put(periodStart, p);
    }
    this.lastStart = periodStart;
    this.lastUsage = p;
    return p;
  }

  usageToAdd(periodStart: number): PeriodUsage | null {
    if (periodStart === this.lastStart) return this.lastUsage;
    if (!this.stored.additive || this.periods.has(periodStart)) return this.usage(periodStart);
    // Not read: the batch counts from zero (addUse sets its end) and the adapter adds the counts.
    const p: PeriodUsage = { start: periodStart, end: null, used: emptyLimits(), usageEvents: 0 };
    this.put(periodStart, p);
    this.added.add(periodStart);
    this.lastStart = periodStart;
    this.lastUsage = p;
    return p;
  }

  /** The stored row of a period counted from zero so far, with this batch's uses added to it (then a row like any other). */
  private readAdded(periodStart: number): void {
    this.added.delete(periodStart);
    const counted = this.periods.get(periodStart)!;
    const r = this.stored.usage(this.spaceId, periodStart);
    if (r === null) return; // no stored row: what the batch counted is the whole usage
    const used = { ...r.used };
    for (const pool of Object.keys(used) as (keyof typeof used)[]) used[pool] += counted.used[pool];
    const whole: PeriodUsage = { start: periodStart, end: counted.usageEvents > 0 ? counted.end : r.periodEnd, used, usageEvents: r.usageEvents + counted.usageEvents };
    this.periods.set(periodStart, whole);
    if (periodStart === this.lastStart) this.lastUsage = whole;
  }

  setUsage(periodStart: number, usage: PeriodUsage | null): void {
    this.added.delete(periodStart);
    this.put(periodStart, usage);
    if (periodStart === this.lastStart) this.lastUsage = usage;
  }

  private put(periodStart: number, usage: PeriodUsage | null): void {
    const before = this.periods.size;
    this.periods.set(periodStart, usage);
    this.count.periods += this.periods.size - before;
  }
}

/**
 * The rows one `apply` batch touches, kept in memory so each is written once at the end of the
 * batch's transaction. Both read models use it; they differ only in how stored rows are loaded
 * and how the result is written. Rows are indexed per Space (one lookup per event), usage by
 * period start.
 */
export class BatchRows implements RowAccess {
  private readonly bySpace = new Map<string, SpaceRows>();
  readonly thresholds = new Map<string, ThresholdRow>();
  /** (Space, period) pairs whose stored threshold rows go away: adapters delete them before writing `thresholds`. */
  readonly clearedThresholds: { spaceId: string; periodStart: number }[] = [];
  /** Usage rows buffered, over every Space (kept as they are added: `size` is asked per page). */
  private readonly count = { periods: 0 };

  constructor(private readonly stored: StoredRows) {}

  /** Rows buffered: a caller applying many pages into one batch flushes when this grows large. */
  get size(): number {
    return this.bySpace.size + this.thresholds.size + this.clearedThresholds.length + this.count.periods;
  }

  /** Space rows buffered. */
  get spaceCount(): number {
    return this.bySpace.size;
  }

  space(spaceId: string): SpaceAccess {
    let s = this.bySpace.get(spaceId);
    if (s === undefined) {
      s = new SpaceRows(spaceId, this.stored, this.count);
      this.bySpace.set(spaceId, s);
    }
    return s;
  }

  /**
   * The Space rows to write, split by what changed: `full` (new rows, or a timeline or last reset
   * that changed: every column, nextResetAt derived again) and `revisionOnly` (a stored row whose
   * events changed nothing but its revision, e.g. usage: its timeline, resets and nextResetAt stay
   * as stored, so adapters write the revision alone: no timeline re-serialised, no index entry
   * touched). A Space whose row was never read (uses with recorded periods) has a stored row whose
   * revision alone changes.
   */
  spaceChanges(): { full: SpaceRow[]; revisionOnly: { spaceId: string; revision: number }[] } {
    const full: SpaceRow[] = [];
    const revisionOnly: { spaceId: string; revision: number }[] = [];
    for (const s of this.bySpace.values()) {
      if (!s.isRead) {
        revisionOnly.push({ spaceId: s.spaceId, revision: s.revision });
        continue;
      }
      s.row.revision = s.revision;
      if (s.changedBeyondRevision) {
        s.row.nextResetAt = nextResetOf(s.row);
        full.push(s.row);
      } else {
        // nextResetAt is derived from the timeline and lastResetAt alone: unchanged too.
        s.row.nextResetAt = s.loaded!.nextResetAt;
        revisionOnly.push(s.row);
      }
    }
    return { full, revisionOnly };
  }

  /**
   * Usage rows to write (`put`: whole rows; `added`: counts to add to the stored row, or the row
   * when there is none: see `StoredRows.additive`), each with its Space's revision as of the
   * batch's end, and the (spaceId, periodStart) keys of rows to delete.
   */
  usageChanges(): { put: UsageWrite[]; added: UsageWrite[]; deleted: { spaceId: string; periodStart: number }[] } {
    const put: UsageWrite[] = [];
    const added: UsageWrite[] = [];
    const deleted: { spaceId: string; periodStart: number }[] = [];
    for (const [spaceId, s] of this.bySpace)
      for (const [periodStart, p] of s.periods) {
        if (!p) deleted.push({ spaceId, periodStart });
        else if (s.added.has(periodStart)) added.push(toWrite(spaceId, p, s.revision));
        else put.push(toWrite(spaceId, p, s.revision));
      }
    return { put, added, deleted };
  }

  putThreshold(row: ThresholdRow): void {
    this.thresholds.set(`${row.spaceId}|${row.periodStart}|${row.pool}|${row.threshold}`, row);
  }

  clearThresholds(spaceId: string, periodStart: number): void {
    // Puts of this batch before the clear go with it; puts after it are written after the delete.
    const prefix = `${spaceId}|${periodStart}|`;
    for (const key of this.thresholds.keys()) if (key.startsWith(prefix)) this.thresholds.delete(key);
    this.clearedThresholds.push({ spaceId, periodStart });
  }
}

/** When the scheduler must next look at the Space: its next reset or a pending activation. */
export function nextResetOf(row: SpaceRow): number | null {
  return nextWakeUp(row.timeline, row.lastResetAt);
}

export const isJsonEvent = (e: PageEvent): e is StoredEventJson => typeof (e as StoredEventJson).dataJson === 'string';

export function applyEvent(rows: RowAccess, event: FoldedEvent): void {
  if (!event.streamName.startsWith('space-')) return;
  fold(rows, event, spaceIdOfStored(event), decodeSpaceEvent(event));
}

/**
 * `applyEvent` of an event read as JSON text: its data (and metadata, when it has some) parsed once,
 * here; nothing of it outlives the call but what the rows keep.
 */
export function applyJsonEvent(rows: RowAccess, event: StoredEventJson): void {
  if (!event.streamName.startsWith('space-')) return;
  const shape = parseStoredJson(event.type, event.dataJson, event.metadataJson);
  fold(rows, event, spaceIdOf(event.streamName, shape.data), decodeSpaceEvent(shape));
}

/** `applyEvent` of either kind of page event. */
export function applyPageEvent(rows: RowAccess, event: PageEvent): void {
  if (isJsonEvent(event)) applyJsonEvent(rows, event);
  else applyEvent(rows, event);
}

function fold(rows: RowAccess, event: Pick<FoldedEvent, 'id' | 'streamName' | 'revision'>, spaceId: string, ev: SpaceEvent | null): void {
  const rs = rows.space(spaceId);
  rs.revision = event.revision;
  // The Space's first event: its row is made (and written whole) whatever the event.
  if (event.revision === 0) void rs.row;
  if (ev === null) return;
  switch (ev.type) {
    // Usage first: nearly every event is one.
    case 'GenerationRecorded':
    case 'BatchExportRecorded': {
      const { at, pool, amount } = usageItemOf(ev);
      const period = rs.periodOfUse(at, recordedPeriodOf(ev.data));
      // addUse changes the batch's own row in place, or makes the period's first one.
      const current = rs.usageToAdd(period.start);
      const next = addUse(current, period, pool, amount);
      if (next !== current) rs.setUsage(period.start, next);
      break;
    }
    case 'SubscriptionChanged': {
      const d = ev.data;
      const space = rs.row;
      space.timeline = withSubscriptionChange(space.timeline, d);
      // What was recorded under the start of the first period a decision can still read belongs to
      // something else (see `SubscriptionChangedData.clearsPeriod`): cleared before the moves.
      if (d.clearsPeriod !== undefined) {
        const start = Date.parse(d.clearsPeriod);
        rs.setUsage(start, null);
        rows.clearThresholds(spaceId, start);
      }
      // The decision recorded how the change moved usage between periods; events written before
      // moves were recorded get them from `withLegacyMoves` before they reach here.
      if (!d.moves) throw new Error(`SubscriptionChanged ${event.id} of ${event.streamName} has no recorded moves (pass its page through withLegacyMoves)`);
      for (const m of d.moves) {
        const start = Date.parse(m.periodStart);
        rs.setUsage(start, applyPeriodMove(rs.usage(start), m));
      }
      break;
    }
    case 'SubscriptionActivated': {
      const space = rs.row;
      space.timeline = withActivation(space.timeline, ev.data.sourceEventId);
      break;
    }
    case 'PeriodReset': {
      const start = Date.parse(ev.data.periodStart);
      const space = rs.row;
      space.lastResetAt = space.lastResetAt === null ? start : Math.max(space.lastResetAt, start);
      break;
    }
    case 'ThresholdCrossed':
    case 'ThresholdRearmed': {
      const d = ev.data;
      rows.putThreshold({
        spaceId,
        periodStart: parseStoredInstant(d.periodStart),
        pool: d.pool,
        threshold: d.threshold,
        state: ev.type === 'ThresholdCrossed' ? 'fired' : 'rearmed',
        eventId: event.id,
      });
      break;
    }
    default:
      break;
  }
  // The Space row is written at the end of the batch; nextResetAt is derived then, once per Space
  // (BatchRows.spaceChanges()).
}
