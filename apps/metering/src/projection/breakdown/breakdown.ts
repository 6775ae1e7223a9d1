/**
 * The usage breakdown read model (issue 15): which members (userId) and features used a Space's
 * pools, per period; and, for the ops console, each Space's threshold state in its latest period.
 *
 * A read model of its own: own tables (`rm_breakdown`, `rm_breakdown_watch`), own checkpoint
 * (`rm_breakdown_checkpoint`, untouched by the balance read model's clear), rows and checkpoint written in one transaction, events at or
 * before the checkpoint skipped (a page applied twice changes nothing). The Projector hands it
 * every page it applies to the balances (projection/projector.ts) and a rebuild clears and
 * replays it with them (projection/rebuild.ts), so it is rebuilt with the others.
 *
 * Keys come from the stored event as recorded: `periodStart` of GenerationRecorded /
 * BatchExportRecorded (the period the decider counted it in), `userId`, and the feature (a batch
 * export counts under the pseudo-feature `batch_export`; an AI feature used inside a batch counts
 * under its own feature). A back-dated subscription change that moves usage between periods
 * records the move per member and feature (`SubscriptionChanged.memberMoves`): the rows follow it
 * (a row left with no usage event goes away), as the balances follow `moves`.
 */
import { BATCH_EXPORT_FEATURE, type Limits, POOLS, type Pool, decodeSpaceEvent, emptyLimits, spaceIdOfStored } from '@metering/domain';
import type { StoredEvent } from '@metering/event-store';

export const BREAKDOWN_CHECKPOINT = 'breakdown';

export interface BreakdownRow {
  spaceId: string;
  /** Epoch ms, as recorded on the usage event. */
  periodStart: number;
  userId: string;
  feature: string;
  used: Limits;
  /** Usage events counted in this row. */
  events: number;
}

/** The latest state of one threshold of one pool of a Space (rows of older periods are dropped at a reset). */
export interface WatchRow {
  spaceId: string;
  pool: Pool;
  threshold: number;
  periodStart: number;
  state: 'fired' | 'rearmed';
  used: number;
  limit: number;
  /** Global position of the event that set this state. */
  position: string;
  recordedAt: string;
}

export interface BreakdownDump {
  rows: BreakdownRow[];
  watch: WatchRow[];
}

/** What a projector needs of a read model that follows the balance projection's pages. */
export interface ProjectionFollower {
  /** Global position of the last event applied (0n when none). */
  checkpoint(): Promise<bigint>;
  /** Applies events in global order and moves the checkpoint, atomically; events at or before it are skipped. */
  apply(events: StoredEvent[]): Promise<void>;
  /** Drops every row and the checkpoint (for a rebuild). */
  clear(): Promise<void>;
}

export interface BreakdownReadModel extends ProjectionFollower {
  init(): Promise<void>;
  /** The Space's rows of one period, largest use first. */
  forPeriod(spaceId: string, periodStart: number): Promise<BreakdownRow[]>;
  /** Fired thresholds, highest threshold first, then the most recent: Spaces nearest or over their limits. */
  watchList(limit: number): Promise<WatchRow[]>;
  /** Everything, in a canonical order (rebuild equality). */
  dump(): Promise<BreakdownDump>;
  close(): Promise<void>;
}


const zero = emptyLimits;

/** A change to write, in event order (sums are merged; watch changes keep their order). */
export type WatchChange =
  | { kind: 'set'; row: WatchRow }
  /** Drops the Space's rows of periods before `periodStart` (a reset). */
  | { kind: 'reset'; spaceId: string; periodStart: number }
  /** Drops the Space's rows of the period that starts at `periodStart` (a subscription change's `clearsPeriod`). */
  | { kind: 'clear'; spaceId: string; periodStart: number };

/** Whether a set replaces the watch row kept for its key: a row of the same or an earlier period (the one rule both adapters' SQL states). */
export const watchSetReplaces = (set: Pick<WatchRow, 'periodStart'>, kept: Pick<WatchRow, 'periodStart'>): boolean => set.periodStart >= kept.periodStart;

/** Consecutive watch changes of one kind, written by one statement. */
export type WatchRun =
  | { kind: 'set'; rows: WatchRow[] }
  | { kind: 'reset' | 'clear'; resets: { spaceId: string; periodStart: number }[] };

/**
 * A batch's watch changes as few statements, with the effect of applying them one by one: a run
 * of consecutive sets keeps, per (Space, pool, threshold), the set a sequential apply would leave
 * (`watchSetReplaces` is a "latest of the greatest period" choice, so folding the run first and
 * then against the stored row gives the same row); a run of consecutive resets deletes what each
 * would (a row older than any of its Space's resets). Runs keep the changes' order.
 */
export function watchRuns(changes: readonly WatchChange[]): WatchRun[] {
  // A run of sets is built as a map by key (a later set that replaces keeps the key's place).
  type Building = { kind: 'set'; byKey: Map<string, WatchRow> } | Exclude<WatchRun, { kind: 'set' }>;
  const runs: Building[] = [];
  for (const c of changes) {
    const last = runs.at(-1);
    if (c.kind === 'set') {
      const byKey = last?.kind === 'set' ? last.byKey : new Map<string, WatchRow>();
      if (last?.kind !== 'set') runs.push({ kind: 'set', byKey });
      const key = `${c.row.spaceId}|${c.row.pool}|${c.row.threshold}`;
      const kept = byKey.get(key);
      if (kept === undefined || watchSetReplaces(c.row, kept)) byKey.set(key, c.row);
    } else {
      const reset = { spaceId: c.spaceId, periodStart: c.periodStart };
      if (last !== undefined && last.kind === c.kind) last.resets.push(reset);
      else runs.push({ kind: c.kind, resets: [reset] });
    }
  }
  return runs.map((r) => (r.kind === 'set' ? { kind: 'set', rows: [...r.byKey.values()] } : r));
}

/** The rows one batch of events changes, decided without reading the database. */
export class BreakdownBatch {
  readonly sums = new Map<string, BreakdownRow>();
  readonly watch: WatchChange[] = [];
  /** (Space, period) pairs whose stored rows go away (`clearsPeriod`): adapters delete them before adding `sums`. */
  readonly cleared: { spaceId: string; periodStart: number }[] = [];
  position = 0n;

  constructor(from: bigint) {
    this.position = from;
  }

  add(e: StoredEvent): void {
    if (e.globalPosition <= this.position) return;
    this.position = e.globalPosition;
    if (!e.streamName.startsWith('space-')) return;
    const spaceId = spaceIdOfStored(e);
    const ev = decodeSpaceEvent(e);
    if (ev === null) return;
    switch (ev.type) {
      case 'GenerationRecorded': {
        const d = ev.data;
        this.count(spaceId, Date.parse(d.periodStart), d.userId, d.feature, d.pool, d.credits);
        break;
      }
      case 'BatchExportRecorded': {
        const d = ev.data;
        this.count(spaceId, Date.parse(d.periodStart), d.userId, BATCH_EXPORT_FEATURE, 'batch_exports', d.images);
        break;
      }
      case 'ThresholdCrossed':
      case 'ThresholdRearmed': {
        const d = ev.data;
        this.watch.push({
          kind: 'set',
          row: {
            spaceId,
            pool: d.pool,
            threshold: d.threshold,
            periodStart: Date.parse(d.periodStart),
            state: ev.type === 'ThresholdCrossed' ? 'fired' : 'rearmed',
            used: d.used,
            limit: d.limit,
            position: e.globalPosition.toString(),
            recordedAt: e.recordedAt,
          },
        });
        break;
      }
      case 'PeriodReset': {
        const d = ev.data;
        this.watch.push({ kind: 'reset', spaceId, periodStart: Date.parse(d.periodStart) });
        break;
      }
      case 'SubscriptionChanged': {
        // What was recorded under this start belongs to something else: cleared before the moves.
        if (ev.data.clearsPeriod !== undefined) this.clear(spaceId, Date.parse(ev.data.clearsPeriod));
        for (const m of ev.data.memberMoves ?? []) {
          this.move(spaceId, Date.parse(m.from), m.userId, m.feature, m.used, m.usageEvents, -1);
          this.move(spaceId, Date.parse(m.to), m.userId, m.feature, m.used, m.usageEvents, 1);
        }
        break;
      }
      default:
        break;
    }
  }

  /** The Space's rows and watch rows of one period go away; sums of this batch before it go with them. */
  private clear(spaceId: string, periodStart: number): void {
    for (const [k, r] of this.sums) if (r.spaceId === spaceId && r.periodStart === periodStart) this.sums.delete(k);
    this.cleared.push({ spaceId, periodStart });
    this.watch.push({ kind: 'clear', spaceId, periodStart });
  }

  private row(spaceId: string, periodStart: number, userId: string, feature: string): BreakdownRow {
    const k = JSON.stringify([spaceId, periodStart, userId, feature]);
    let row = this.sums.get(k);
    if (!row) this.sums.set(k, (row = { spaceId, periodStart, userId, feature, used: zero(), events: 0 }));
    return row;
  }

  private count(spaceId: string, periodStart: number, userId: string, feature: string, pool: Pool, amount: number): void {
    const row = this.row(spaceId, periodStart, userId, feature);
    row.used[pool] += amount;
    row.events += 1;
  }

  /** A member move's side: `sign` -1 takes the usage out of the row, 1 adds it. */
  private move(spaceId: string, periodStart: number, userId: string, feature: string, used: Limits, events: number, sign: 1 | -1): void {
    const row = this.row(spaceId, periodStart, userId, feature);
    for (const pool of POOLS) row.used[pool] += sign * used[pool];
    row.events += sign * events;
  }

  /**
   * The summed rows a member move took usage out of (net of the page: a use and its move in one
   * page sum to nothing): after the write, such a row left with no usage event is deleted.
   */
  emptied(): BreakdownRow[] {
    return [...this.sums.values()].filter((r) => r.events <= 0);
  }
}

/** Largest use first (credits, then exports, then events), then by member and feature. */
export function byUse(a: BreakdownRow, b: BreakdownRow): number {
  const total = (r: BreakdownRow) => r.used.ai_image_credits + r.used.ai_video_credits;
  return total(b) - total(a) || b.used.batch_exports - a.used.batch_exports || b.events - a.events || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0) || (a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : 0);
}
