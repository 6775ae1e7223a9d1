/**
 * Ops logic shared by the CLI (`metering audit`, `metering balance`) and the admin HTTP endpoints:
 * replay a Space's stream with the domain fold and compare it with the balance read model.
 * Reads only: nothing here writes to the store or the read model.
 */
import {
  type Catalog,
  type Limits,
  type Pool,
  POOLS,
  SPACE_STREAM_PREFIX,
  type SpaceEvent,
  type SpaceState,
  type UsageView,
  decodeSpaceEvents,
  foldSpace,
  iso,
  limitsFor,
  periodAt,
  spaceStreamName,
  usageSourceOf,
  usageView,
  emptyLimits,
} from '@metering/domain';
import type { EventStore, StoredEvent } from '@metering/event-store';
import type { ThresholdRow, BalanceQueries, BalanceProjection } from '../projection/balance-read-model';

export interface AuditPeriod {
  start: string;
  end: string | null;
  used: Limits;
  limits: Limits;
  plan: string;
  cycle: string;
  usageEvents: number;
  /** Thresholds fired (and not re-armed) in this period, e.g. "ai_image_credits@80". */
  thresholdsFired: string[];
  /** PeriodReset events that opened this period (recordedAt of each). */
  resets: string[];
}

export interface AuditDifference {
  /** What differs: space, usage, threshold. */
  kind: 'space' | 'usage' | 'threshold';
  periodStart: string | null;
  field: string;
  expected: unknown;
  actual: unknown;
  message: string;
}

export interface AuditReport {
  spaceId: string;
  /** Events folded (the stream's revision + 1). */
  events: number;
  periods: AuditPeriod[];
  differences: AuditDifference[];
  consistent: boolean;
}

export interface AuditOptions {
  from?: number;
  to?: number;
  /** The instant limits are evaluated at (default now). */
  now?: number;
  /** Pre-fetched threshold rows of the Space (audit --all reads them once); default: from dump(). */
  thresholdRows?: ThresholdRow[];
}

const asSpaceEvents = (events: StoredEvent[]): SpaceEvent[] => decodeSpaceEvents(events);

const thresholdKey = (periodStart: number, pool: string, threshold: number): string => `${periodStart}|${pool}|${threshold}`;

/** Ids of every Space with a stream, from the store (sorted). */
export async function listSpaceIds(store: EventStore, pageSize = 5000): Promise<string[]> {
  const ids = new Set<string>();
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: pageSize, streamPrefix: SPACE_STREAM_PREFIX });
    if (page.length === 0) break;
    for (const e of page) if (e.revision === 0) ids.add(e.streamName.slice(SPACE_STREAM_PREFIX.length));
    after = page[page.length - 1].globalPosition;
  }
  return [...ids].sort();
}

/** Folds a Space's stream and compares it with the read model. */
export async function auditSpace(
  store: EventStore,
  readModel: BalanceQueries & Pick<BalanceProjection, 'dump'>,
  catalog: Catalog,
  spaceId: string,
  options: AuditOptions = {},
): Promise<AuditReport> {
  const now = options.now ?? Date.now();
  const stored = await store.readStream(spaceStreamName(spaceId));
  const state: SpaceState = foldSpace(spaceId, asSpaceEvents(stored));
  const differences: AuditDifference[] = [];
  const diff = (d: Omit<AuditDifference, 'message'> & { message?: string }) =>
    differences.push({ ...d, message: d.message ?? `${d.kind} ${d.periodStart ?? ''} ${d.field}: stream says ${JSON.stringify(d.expected)}, read model says ${JSON.stringify(d.actual)}`.replace('  ', ' ') });

  // Periods of interest: every period with usage, a threshold or a reset.
  const resetsByPeriod = new Map<number, string[]>();
  const firedEver = new Set<number>();
  for (const e of stored) {
    if (e.type === 'PeriodReset') {
      const start = Date.parse((e.data as { periodStart: string }).periodStart);
      resetsByPeriod.set(start, [...(resetsByPeriod.get(start) ?? []), e.recordedAt]);
    } else if (e.type === 'ThresholdCrossed') firedEver.add(Date.parse((e.data as { periodStart: string }).periodStart));
  }
  const firedByPeriod = new Map<number, string[]>();
  for (const key of state.fired) {
    const [start, pool, threshold] = key.split('|');
    const s = Number(start);
    firedByPeriod.set(s, [...(firedByPeriod.get(s) ?? []), `${pool}@${threshold}`]);
  }
  const starts = new Set<number>([...state.periods.keys(), ...resetsByPeriod.keys(), ...firedEver]);
  const periods: AuditPeriod[] = [];
  for (const start of [...starts].sort((a, b) => a - b)) {
    const period = periodAt(state.timeline, start);
    const p = state.periods.get(start);
    const end = p ? p.end : period.start === start ? period.end : null;
    if (options.from !== undefined && end !== null && end <= options.from) continue;
    if (options.to !== undefined && start >= options.to) continue;
    const seg = limitsFor(state.timeline, { start, end }, now, catalog);
    periods.push({
      start: iso(start),
      end: end === null ? null : iso(end),
      used: p ? { ...p.used } : emptyLimits(),
      limits: { ...seg.limits },
      plan: seg.plan,
      cycle: seg.cycle,
      usageEvents: p?.usageEvents ?? 0,
      thresholdsFired: (firedByPeriod.get(start) ?? []).sort(),
      resets: resetsByPeriod.get(start) ?? [],
    });
  }
  const inRange = (start: number, end: number | null) =>
    !(options.from !== undefined && end !== null && end <= options.from) && !(options.to !== undefined && start >= options.to);

  // The Space row.
  const row = await readModel.getSpace(spaceId);
  if (stored.length === 0 && !row) return { spaceId, events: 0, periods, differences, consistent: true };
  if (!row) diff({ kind: 'space', periodStart: null, field: 'row', expected: 'present', actual: null, message: `space row missing from the read model (stream has ${stored.length} events)` });
  else {
    if (row.revision !== state.version - 1)
      diff({ kind: 'space', periodStart: null, field: 'revision', expected: state.version - 1, actual: row.revision, message: `space revision: stream is at ${state.version - 1}, read model applied up to ${row.revision}${row.revision < state.version - 1 ? ' (read model behind: projection not caught up?)' : ''}` });
    if (JSON.stringify(row.timeline) !== JSON.stringify(state.timeline))
      diff({ kind: 'space', periodStart: null, field: 'timeline', expected: state.timeline, actual: row.timeline });
    if (row.lastResetAt !== state.lastResetAt)
      diff({
        kind: 'space', periodStart: null, field: 'lastResetAt',
        expected: state.lastResetAt === null ? null : iso(state.lastResetAt), actual: row.lastResetAt === null ? null : iso(row.lastResetAt),
      });
  }

  // Usage rows: one per period with usage.
  const rmUsage = new Map((await readModel.usage(spaceId)).map((u) => [u.periodStart, u]));
  for (const p of [...state.periods.values()].filter((x) => x.usageEvents > 0).sort((a, b) => a.start - b.start)) {
    if (!inRange(p.start, p.end)) continue;
    const r = rmUsage.get(p.start);
    rmUsage.delete(p.start);
    const ps = iso(p.start);
    if (!r) {
      diff({ kind: 'usage', periodStart: ps, field: 'row', expected: p.used, actual: null, message: `usage ${ps}: period missing from the read model (stream: ${JSON.stringify(p.used)})` });
      continue;
    }
    if (r.periodEnd !== p.end)
      diff({ kind: 'usage', periodStart: ps, field: 'periodEnd', expected: p.end === null ? null : iso(p.end), actual: r.periodEnd === null ? null : iso(r.periodEnd) });
    for (const pool of POOLS)
      if (r.used[pool] !== p.used[pool]) diff({ kind: 'usage', periodStart: ps, field: pool, expected: p.used[pool], actual: r.used[pool] });
    if (r.usageEvents !== p.usageEvents) diff({ kind: 'usage', periodStart: ps, field: 'usageEvents', expected: p.usageEvents, actual: r.usageEvents });
  }
  for (const r of rmUsage.values()) {
    if (!inRange(r.periodStart, r.periodEnd)) continue;
    const ps = iso(r.periodStart);
    diff({ kind: 'usage', periodStart: ps, field: 'row', expected: null, actual: r.used, message: `usage ${ps}: read model has a period the stream does not (${JSON.stringify(r.used)})` });
  }

  // Thresholds: fired (not re-armed) in the stream = rows in state 'fired'.
  const rows = options.thresholdRows ?? (await readModel.dump()).thresholds.filter((t) => t.spaceId === spaceId);
  const rmFired = new Set(rows.filter((t) => t.state === 'fired').map((t) => thresholdKey(t.periodStart, t.pool, t.threshold)));
  const keys = new Set([...state.fired, ...rmFired]);
  for (const key of [...keys].sort()) {
    const [start, pool, threshold] = key.split('|');
    const s = Number(start);
    if (!inRange(s, periodAt(state.timeline, s).end)) continue;
    const inStream = state.fired.has(key);
    const inRm = rmFired.has(key);
    if (inStream !== inRm)
      diff({
        kind: 'threshold', periodStart: iso(s), field: `${pool}@${threshold}`, expected: inStream ? 'fired' : 'not fired', actual: inRm ? 'fired' : 'not fired',
        message: `threshold ${iso(s)} ${pool}@${threshold}%: stream says ${inStream ? 'fired' : 'not fired'}, read model says ${inRm ? 'fired' : 'not fired'}`,
      });
  }
  return { spaceId, events: stored.length, periods, differences, consistent: differences.length === 0 };
}

/**
 * Which instant an event counts at for a balance "as of" an instant: usage at its occurredAt,
 * subscription changes at their effectiveAt (business time: what the Space had used at that
 * instant, including late-arriving usage that happened before it); every other event (resets,
 * thresholds) at the store's recordedAt.
 */
export function eventInstant(e: StoredEvent): number {
  const d = e.data as { occurredAt?: string; effectiveAt?: string };
  if ((e.type === 'GenerationRecorded' || e.type === 'BatchExportRecorded') && d.occurredAt) return Date.parse(d.occurredAt);
  if (e.type === 'SubscriptionChanged' && d.effectiveAt) return Date.parse(d.effectiveAt);
  return Date.parse(e.recordedAt);
}

export interface BalanceAt {
  view: UsageView;
  /** Events kept (at or before the instant) and skipped. */
  eventsIncluded: number;
  eventsExcluded: number;
}

/** The usage view of a Space as of `at`, from its stream (only events at or before `at`). */
export async function balanceAt(store: EventStore, catalog: Catalog, spaceId: string, at: number): Promise<BalanceAt> {
  const stored = await store.readStream(spaceStreamName(spaceId));
  const kept = stored.filter((e) => eventInstant(e) <= at);
  const state = foldSpace(spaceId, asSpaceEvents(kept));
  return { view: usageView(spaceId, usageSourceOf(state), at, catalog), eventsIncluded: kept.length, eventsExcluded: stored.length - kept.length };
}

export const poolsOf = (l: Limits): string => POOLS.map((p: Pool) => `${l[p]}`).join('/');
