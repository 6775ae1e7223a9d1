/**
 * What a customer compares on the usage screen: per Space and period, the usage breakdown's rows
 * (member x feature) add up to the balances' usage row, also after back-dated changes moved usage
 * between periods.
 */
import { type Limits, POOLS } from '@metering/domain';
import type { UsageRow } from '../../apps/metering/src/projection/balance-read-model';
import type { BreakdownRow } from '../../apps/metering/src/projection/breakdown/breakdown';

type Sums = Map<string, { used: Limits; usageEvents: number }>;
const byKey = (sums: Sums): Sums => new Map([...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** Expects the rows to add up to the usage rows (those with usage events), period by period; returns how many periods. */
export function expectBreakdownAddsUpToBalances(rows: readonly BreakdownRow[], usage: readonly UsageRow[]): number {
  const perPeriod: Sums = new Map();
  for (const r of rows) {
    const k = `${r.spaceId}|${r.periodStart}`;
    const p = perPeriod.get(k) ?? { used: { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 0 };
    for (const pool of POOLS) p.used[pool] += r.used[pool];
    p.usageEvents += r.events;
    perPeriod.set(k, p);
  }
  const balances: Sums = new Map(usage.filter((u) => u.usageEvents > 0).map((u) => [`${u.spaceId}|${u.periodStart}`, { used: u.used, usageEvents: u.usageEvents }]));
  expect(byKey(perPeriod)).toEqual(byKey(balances));
  return balances.size;
}
