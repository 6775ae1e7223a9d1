/**
 * The benchmarks' flat stream (bench/*.bench.ts, bench/seed.ts): `spaces` subscriptions (one per
 * Space, 20 days before `now`, pro/max monthly, pro yearly, ultra monthly in turn), then usage
 * events spread over the Spaces uniformly: generations of every feature that costs credits (1-3),
 * 1 in 10 a batch export of 1-20 images on web or mobile, all within the last 10 days. Event ids
 * are random UUIDs (a store may keep earlier runs); the Space draws are fixed by the seed.
 */
import { randomUUID } from 'node:crypto';
import type { Cycle, InboundEvent, Plan } from '@metering/domain';
import { workloadCatalog } from './catalog';
import { batchExported, generationPerformed, subscriptionChanged } from './events';
import { draws, prng } from './random';

const DAY = 86_400_000;

export const benchSpaceId = (i: number): string => `bench-space-${i}`;

/** The bench's tables, taken from the catalog (so they exist) and fixed in size and order (so the mix the results document stays). */
function flatTables(): { plans: { plan: Plan; cycle: Cycle }[]; features: { id: string; medium: 'image' | 'video' }[]; platforms: [string, string] } {
  const cat = workloadCatalog();
  const plans = (
    [
      ['pro', 'monthly'],
      ['max', 'monthly'],
      ['pro', 'yearly'],
      ['ultra', 'monthly'],
    ] as [Plan, Cycle][]
  ).map(([plan, cycle]) => ({ plan, cycle }));
  for (const p of plans) if (!cat.pairs.some((x) => x.plan === p.plan && x.cycle === p.cycle)) throw new Error(`catalog has no ${p.plan}/${p.cycle}`);
  const platforms: [string, string] = ['web', 'mobile'];
  for (const id of platforms) if ((cat.platforms.find((x) => x.id === id)?.cap ?? 0) < 20) throw new Error(`catalog caps ${id} under 20 images`);
  return { plans, features: cat.features.filter((f) => f.credits > 0), platforms };
}

/**
 * `n` events: the first min(spaces, n) are the subscriptions, the rest usage. Made as they are
 * consumed (a bench holds only what it feeds).
 */
export function* flatStream(n: number, spaces: number, seed = 1, now = Date.now()): Generator<InboundEvent> {
  const { plans, features, platforms } = flatTables();
  const d = draws(prng(seed));
  for (let i = 0; i < Math.min(spaces, n); i++) {
    const { plan, cycle } = plans[i % plans.length];
    yield subscriptionChanged({ eventId: randomUUID(), spaceId: benchSpaceId(i), plan, cycle, effectiveAt: now - 20 * DAY });
  }
  for (let k = spaces; k < n; k++) {
    const base = { eventId: randomUUID(), spaceId: benchSpaceId(Math.floor(d.rand() * spaces)), userId: `u${k % 97}`, occurredAt: now - Math.floor(d.rand() * 10 * DAY) };
    if (d.rand() < 0.1) {
      const platform = d.rand() < 0.5 ? platforms[0] : platforms[1];
      yield batchExported(base, { batchId: `b${k}`, images: d.int(1, 20), platform });
    } else {
      const f = d.pick(features);
      yield generationPerformed(base, { feature: f.id, medium: f.medium, generations: d.int(1, 3) });
    }
  }
}
