/**
 * What the usage screen shows, read with a few indexed reads (the Space row, the running period's
 * usage, its breakdown rows, the Space's per-period usage rows) and computed with the same domain
 * functions as GET /v1/spaces/:id/usage (one source of truth).
 */
import { type Catalog, type Limits, POOLS, type Pool, type UsageView, iso, periodAt, usageView, emptyLimits } from '@metering/domain';
import type { BalanceQueries } from '../projection/balance-read-model';
import type { BreakdownReadModel, BreakdownRow } from '../projection/breakdown/breakdown';
import { readUsageSource } from '../http/spaces.controller';

export const POOL_LABELS: Record<Pool, string> = {
  ai_image_credits: 'AI image credits',
  ai_video_credits: 'AI video credits',
  batch_exports: 'Batch exports',
};

export type PoolState = 'ok' | 'warning' | 'limit' | 'over';

export interface ScreenPool {
  pool: Pool;
  label: string;
  used: number;
  limit: number;
  remaining: number;
  percent: number;
  over: boolean;
  state: PoolState;
}

export interface BreakdownLine {
  key: string;
  used: Limits;
  events: number;
}

export interface HistoryPeriod {
  periodStart: string;
  periodEnd: string | null;
  used: Limits;
  current: boolean;
}

export interface ScreenData {
  view: UsageView;
  pools: ScreenPool[];
  byMember: BreakdownLine[];
  byFeature: BreakdownLine[];
  history: HistoryPeriod[];
}

/** The 80 % / 100 % state of a pool (thresholds as the default catalog has them). */
export function poolState(percent: number, over: boolean): PoolState {
  if (over) return 'over';
  if (percent >= 100) return 'limit';
  if (percent >= 80) return 'warning';
  return 'ok';
}

const zero = emptyLimits;

function group(rows: BreakdownRow[], keyOf: (r: BreakdownRow) => string): BreakdownLine[] {
  const out = new Map<string, BreakdownLine>();
  for (const r of rows) {
    const k = keyOf(r);
    let line = out.get(k);
    if (!line) out.set(k, (line = { key: k, used: zero(), events: 0 }));
    for (const p of POOLS) line.used[p] += r.used[p];
    line.events += r.events;
  }
  const credits = (l: BreakdownLine) => l.used.ai_image_credits + l.used.ai_video_credits;
  return [...out.values()].sort((a, b) => credits(b) - credits(a) || b.used.batch_exports - a.used.batch_exports || b.events - a.events || (a.key < b.key ? -1 : 1));
}

export const HISTORY_PERIODS = 12;

export async function readScreen(readModel: BalanceQueries, breakdown: BreakdownReadModel, catalog: Catalog, spaceId: string, now: number): Promise<ScreenData> {
  const source = await readUsageSource(readModel, spaceId, now);
  const view = usageView(spaceId, source, now, catalog);
  const periodStart = Date.parse(view.periodStart);
  const [rows, usageRows] = await Promise.all([breakdown.forPeriod(spaceId, periodStart), readModel.usage(spaceId)]);
  const pools = POOLS.map((pool) => {
    const p = view.pools[pool];
    return { pool, label: POOL_LABELS[pool], ...p, state: poolState(p.percent, p.over) };
  });
  // The last 12 periods of the Space's timeline, back from the running one (periods without use show 0).
  const usedBy = new Map(usageRows.map((r) => [r.periodStart, r.used]));
  const history: HistoryPeriod[] = [];
  let at = now;
  for (let i = 0; i < HISTORY_PERIODS; i++) {
    const period = periodAt(source.timeline, at);
    const used = i === 0 ? { ai_image_credits: view.pools.ai_image_credits.used, ai_video_credits: view.pools.ai_video_credits.used, batch_exports: view.pools.batch_exports.used } : (usedBy.get(period.start) ?? zero());
    history.unshift({ periodStart: iso(period.start), periodEnd: period.end === null ? null : iso(period.end), used: { ...used }, current: i === 0 });
    if (!Number.isFinite(period.start) || period.start <= 0) break;
    at = period.start - 1;
  }
  return { view, pools, byMember: group(rows, (r) => r.userId), byFeature: group(rows, (r) => r.feature), history };
}
