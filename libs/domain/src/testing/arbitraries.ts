/**
 * fast-check arbitraries for the Space decider and period math. Test-only.
 */
import fc from 'fast-check';
import { CYCLES, type Cycle, type Limits, PLANS, type Plan } from '../catalog/catalog';
import { DAY_MS, iso } from '../period';
import type { SpaceCommand } from '../space';
import { SPACE_ID, USER_ID } from './given-when-then';

export const T0 = Date.parse('2025-01-01T00:00:00.000Z');
export const MINUTE_MS = 60_000;

/**
 * An instant to anchor periods on: any year 1972..2099, biased towards month ends (28..31, clamped
 * to the month's length), Feb 29 of leap years, midnight and arbitrary times of day.
 */
export const anchorArb: fc.Arbitrary<number> = fc
  .record({
    year: fc.oneof(fc.integer({ min: 1972, max: 2099 }), fc.constantFrom(2000, 2024, 2028, 2099)),
    month0: fc.integer({ min: 0, max: 11 }),
    day: fc.oneof(fc.integer({ min: 1, max: 31 }), fc.integer({ min: 28, max: 31 })),
    timeOfDay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: DAY_MS - 1 }), fc.constant(DAY_MS - 1)),
  })
  .map(({ year, month0, day, timeOfDay }) => {
    const dim = new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
    return Date.UTC(year, month0, Math.min(day, dim)) + timeOfDay;
  });

/** Limits small enough that random usage crosses thresholds often; 0 included. */
export const smallLimitsArb: fc.Arbitrary<Limits> = fc.record({
  ai_image_credits: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
  ai_video_credits: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
  batch_exports: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
});

const FEATURES: ReadonlyArray<[string, 'image' | 'video']> = [
  ['ai_backgrounds', 'image'],
  ['ai_shadows', 'image'],
  ['ghost_mannequin', 'image'],
  ['virtual_model', 'image'],
  ['ai_video', 'video'],
  ['background_removal', 'image'],
  ['templates', 'image'],
];

/** A usage input (without eventId / instants yet): mostly valid, sometimes refused. */
export type UsageSpec =
  | { kind: 'generation'; feature: string; medium: 'image' | 'video'; generations: number }
  | { kind: 'batch'; images: number; platform: string };

export const validUsageArb: fc.Arbitrary<UsageSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('generation' as const), f: fc.constantFrom(...FEATURES), generations: fc.integer({ min: 1, max: 6 }) }).map(({ kind, f, generations }) => ({ kind, feature: f[0], medium: f[1], generations })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('batch' as const), images: fc.integer({ min: 1, max: 100 }), platform: fc.constantFrom('web', 'mobile') }) },
);

export const anyUsageArb: fc.Arbitrary<UsageSpec> = fc.oneof(
  { weight: 12, arbitrary: validUsageArb },
  { weight: 1, arbitrary: fc.constant<UsageSpec>({ kind: 'generation', feature: 'ai_relight', medium: 'image', generations: 1 }) },
  { weight: 1, arbitrary: fc.constant<UsageSpec>({ kind: 'generation', feature: 'ai_video', medium: 'image', generations: 1 }) },
  { weight: 1, arbitrary: fc.constant<UsageSpec>({ kind: 'batch', images: 101, platform: 'web' }) },
);

export function usageCommand(spec: UsageSpec, eventId: string, occurredAt: number): SpaceCommand {
  return spec.kind === 'generation'
    ? {
        type: 'RecordGeneration',
        input: { eventId, spaceId: SPACE_ID, userId: USER_ID, feature: spec.feature, medium: spec.medium, generations: spec.generations, occurredAt: iso(occurredAt) },
      }
    : {
        type: 'RecordBatchExport',
        input: { eventId, spaceId: SPACE_ID, userId: USER_ID, batchId: `b-${eventId}`, images: spec.images, platform: spec.platform, occurredAt: iso(occurredAt) },
      };
}

export interface SubscriptionSpec {
  plan: Plan;
  cycle: Cycle;
  customLimits?: Limits;
}

/** Any plan and cycle (n/a pairs included: they are refused); enterprise with custom limits. */
export const subscriptionSpecArb: fc.Arbitrary<SubscriptionSpec> = fc
  .record({ plan: fc.constantFrom(...PLANS), cycle: fc.constantFrom(...CYCLES), limits: smallLimitsArb })
  .map(({ plan, cycle, limits }) => (plan === 'enterprise' ? { plan, cycle, customLimits: limits } : { plan, cycle }));

export function subscriptionCommand(spec: SubscriptionSpec, eventId: string, effectiveAt: number): SpaceCommand {
  return {
    type: 'ChangeSubscription',
    input: { eventId, spaceId: SPACE_ID, plan: spec.plan, cycle: spec.cycle, effectiveAt: iso(effectiveAt), ...(spec.customLimits ? { customLimits: spec.customLimits } : {}) },
  };
}

/** A subscription that exists (paid or enterprise): lives usually start with one. */
const paidSubscriptionArb: fc.Arbitrary<SubscriptionSpec> = fc.oneof(
  fc.record({ plan: fc.constantFrom<Plan>('pro', 'max'), cycle: fc.constantFrom(...CYCLES) }),
  fc.record({ plan: fc.constantFrom<Plan>('ultra', 'ultra_2x', 'ultra_5x', 'ultra_10x'), cycle: fc.constantFrom<Cycle>('monthly', 'yearly') }),
  fc.record({ plan: fc.constant<Plan>('enterprise'), cycle: fc.constantFrom(...CYCLES), customLimits: smallLimitsArb }),
);

/** One step of a Space's life: what arrives, and the clock when it is decided. */
export interface Step {
  command: SpaceCommand;
  now: number;
}

type StepSpec =
  | { kind: 'usage'; usage: UsageSpec; late: number }
  | { kind: 'subscription'; sub: SubscriptionSpec; late: number; snap: Snap }
  | { kind: 'reset' };

const lateArb = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 * DAY_MS }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 45 * DAY_MS }) });

/**
 * Where a subscription's effectiveAt falls: anywhere, or moved back to a weekly or monthly boundary
 * of a life that started at T0 (the start of a period of a Space subscribed at T0: changes at the
 * very start of a period, settled or running).
 */
type Snap = 'none' | 'week' | 'month';
const snapArb: fc.Arbitrary<Snap> = fc.oneof({ weight: 3, arbitrary: fc.constant<Snap>('none') }, { weight: 1, arbitrary: fc.constantFrom<Snap>('week', 'month') });

function snapped(t: number, snap: Snap): number {
  if (snap === 'week') return T0 + Math.floor((t - T0) / (7 * DAY_MS)) * 7 * DAY_MS;
  if (snap === 'month') {
    const d = new Date(t);
    return Math.max(T0, Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  }
  return t;
}

const stepSpecArb: fc.Arbitrary<StepSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('usage' as const), usage: anyUsageArb, late: lateArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('subscription' as const), sub: fc.oneof(subscriptionSpecArb, paidSubscriptionArb), late: lateArb, snap: snapArb }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

/**
 * A Space's life: usually a first paid subscription, then steps with a clock that moves forward
 * (0 to ~20 days between steps, sometimes not at all), inputs that may arrive late (occurredAt /
 * effectiveAt before now), subscription changes (n/a pairs included), resets; unique eventIds.
 */
export const lifeArb = (maxSteps = 30): fc.Arbitrary<Step[]> =>
  fc
    .tuple(
      fc.option(paidSubscriptionArb, { freq: 5 }),
      fc.array(fc.record({ spec: stepSpecArb, gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 * DAY_MS })) }), {
        maxLength: maxSteps,
        size: 'max',
      }),
    )
    .map(([first, items]) => {
      let now = T0;
      const steps: Step[] = first ? [{ command: subscriptionCommand(first, 'e-first', T0), now: T0 }] : [];
      items.forEach(({ spec, gap }, i) => {
        now += gap;
        const id = `e${i}`;
        switch (spec.kind) {
          case 'usage':
            steps.push({ command: usageCommand(spec.usage, id, now - spec.late), now });
            break;
          case 'subscription':
            steps.push({ command: subscriptionCommand(spec.sub, id, snapped(now - spec.late, spec.snap)), now });
            break;
          case 'reset':
            steps.push({ command: { type: 'ResetDuePeriods', spaceId: SPACE_ID }, now });
            break;
        }
      });
      return steps;
    });
