import fc from 'fast-check';
import { CYCLES, type Catalog, type Limits, type Pool, catalogVersionAt, resetFamilyOf } from './catalog/catalog';
import type { IdentifiedSpaceEvent, ThresholdCrossedData } from './events';
import { DAY_MS, periodContaining } from './period';
import { type Decision, type SpaceCommand, type SpaceState, decideAll, foldSpace, inboundEventIdOf, initialSpaceState } from './space';
import {
  type Step,
  T0,
  type UsageSpec,
  lifeArb,
  smallLimitsArb,
  subscriptionCommand,
  usageCommand,
  validUsageArb,
} from './testing/arbitraries';
import { SPACE_ID, canonicalState, defaultCatalog, nameAsEventId } from './testing/given-when-then';
import { resetBoundaries } from './timeline';

const catalog: Catalog = defaultCatalog();
const ctx = (now: number) => ({ now, catalog, eventId: nameAsEventId });

/** Decides each step at its own clock, through decideAll, folding as it goes. */
function run(steps: Step[], start: SpaceState = initialSpaceState(SPACE_ID)) {
  let state = start;
  const events: IdentifiedSpaceEvent[] = [];
  const decisions: Decision[] = [];
  for (const s of steps) {
    const r = decideAll(state, [s.command], ctx(s.now));
    state = r.state;
    events.push(...r.events);
    decisions.push(...r.decisions);
  }
  return { state, events, decisions };
}

const isInbound = (c: SpaceCommand) => c.type !== 'ResetDuePeriods';
const eventIdOf = (c: SpaceCommand) => inboundEventIdOf(c) ?? '';

/** Re-deliveries: copies of inbound steps inserted anywhere after the original, decided at that point's clock. */
const redeliveriesArb = fc.array(fc.record({ from: fc.nat(), after: fc.nat() }), { minLength: 1, maxLength: 15 });

function withRedeliveries(steps: Step[], redeliveries: Array<{ from: number; after: number }>): Step[] {
  const inbound = steps.map((s, i) => i).filter((i) => isInbound(steps[i].command));
  if (inbound.length === 0) return steps;
  const copiesAfter = new Map<number, Step[]>();
  for (const r of redeliveries) {
    const from = inbound[r.from % inbound.length];
    const after = from + (r.after % (steps.length - from));
    const copy: Step = { command: structuredClone(steps[from].command), now: steps[after].now };
    copiesAfter.set(after, [...(copiesAfter.get(after) ?? []), copy]);
  }
  return steps.flatMap((s, i) => [s, ...(copiesAfter.get(i) ?? [])]);
}

const crossings = (events: IdentifiedSpaceEvent[]) =>
  events.filter((e): e is IdentifiedSpaceEvent & { type: 'ThresholdCrossed'; data: ThresholdCrossedData } => e.type === 'ThresholdCrossed');

describe('Space decider (properties)', () => {
  it('(a) re-delivering any inputs, anywhere after the original, changes nothing: same events, same state', () => {
    fc.assert(
      fc.property(lifeArb(30), redeliveriesArb, (steps, redeliveries) => {
        const once = run(steps);
        const many = withRedeliveries(steps, redeliveries);
        const twice = run(many);
        expect(canonicalState(twice.state)).toEqual(canonicalState(once.state));
        expect(twice.events).toEqual(once.events);
        // every re-delivery of an accepted input is a duplicate
        const acceptedIds = new Set<string>();
        many.forEach((s, i) => {
          if (!isInbound(s.command)) return;
          const id = eventIdOf(s.command);
          if (acceptedIds.has(id)) expect(twice.decisions[i].outcome).toBe('duplicate');
          else if (twice.decisions[i].outcome === 'accepted') acceptedIds.add(id);
        });
        expect(acceptedIds.size).toBe(once.decisions.filter((d, i) => isInbound(steps[i].command) && d.outcome === 'accepted').length);
        // the stream folds back to the live state (a rebuilt projection equals the live one)
        expect(canonicalState(foldSpace(SPACE_ID, twice.events))).toEqual(canonicalState(twice.state));
      }),
      { numRuns: 150 },
    );
  });

  it('(a) the same holds inside one decideAll batch (a duplicate in the same batch is caught)', () => {
    fc.assert(
      fc.property(lifeArb(25), redeliveriesArb, (steps, redeliveries) => {
        const now = T0 + 400 * DAY_MS;
        const commands = (xs: Step[]) => xs.map((s) => s.command);
        const once = decideAll(initialSpaceState(SPACE_ID), commands(steps), ctx(now));
        const twice = decideAll(initialSpaceState(SPACE_ID), commands(withRedeliveries(steps, redeliveries)), ctx(now));
        expect(canonicalState(twice.state)).toEqual(canonicalState(once.state));
        expect(twice.events).toEqual(once.events);
      }),
      { numRuns: 100 },
    );
  });

  it('(b) usage in any order, after a fixed subscription, gives the same balances', () => {
    const usageArb = fc.array(
      // late by at most 34 days: inside the corrections window (35 days), so every use is accepted
      fc.record({ usage: validUsageArb, at: fc.integer({ min: 0, max: 120 * DAY_MS }), late: fc.integer({ min: 0, max: 34 * DAY_MS }) }),
      { minLength: 1, maxLength: 30 },
    );
    const subArb = fc.constantFrom(
      { plan: 'pro' as const, cycle: 'weekly' as const },
      { plan: 'max' as const, cycle: 'monthly' as const },
      { plan: 'ultra' as const, cycle: 'yearly' as const },
      { plan: 'free' as const, cycle: 'monthly' as const },
    );
    fc.assert(
      fc.property(
        subArb,
        usageArb.chain((us) => fc.tuple(fc.constant(us), fc.shuffledSubarray(us, { minLength: us.length, maxLength: us.length }))),
        (sub, [inOrder, shuffled]) => {
          const ids = new Map(inOrder.map((u, i) => [u, `u${i}`]));
          const steps = (us: typeof inOrder): Step[] => [
            { command: subscriptionCommand(sub, 'sub', T0), now: T0 },
            // each input keeps its own occurredAt and decision clock, whatever the arrival order
            ...us.map((u) => ({ command: usageCommand(u.usage, ids.get(u)!, T0 + u.at), now: T0 + u.at + u.late })),
          ];
          const balances = (s: SpaceState) =>
            [...s.periods.values()].map((p) => ({ start: p.start, used: p.used, usageEvents: p.usageEvents })).sort((a, b) => a.start - b.start);
          const a = run(steps(inOrder)).state;
          const b = run(steps(shuffled)).state;
          expect(balances(b)).toEqual(balances(a));
          // and the balances are the catalog prices summed per period
          const total = [...a.periods.values()].reduce((n, p) => n + p.usageEvents, 0);
          expect(total).toBe(inOrder.length);
        },
      ),
      { numRuns: 150 },
    );
  });

  describe('(d) thresholds', () => {
    const thresholds = catalogVersionAt(catalog, T0).thresholds;
    const reached = (used: number, limit: number, th: number) => used > 0 && used * 100 >= th * limit;
    const priceOf = (u: UsageSpec): { pool: Pool; amount: number } =>
      u.kind === 'batch'
        ? { pool: 'batch_exports', amount: u.images }
        : { pool: u.medium === 'video' ? 'ai_video_credits' : 'ai_image_credits', amount: catalog.versions[0].features[u.feature].credits * u.generations };
    const scenarioArb = fc.record({
      limits: smallLimitsArb,
      cycle: fc.constantFrom(...CYCLES),
      usage: fc.array(fc.record({ usage: validUsageArb, at: fc.integer({ min: 0, max: 90 * DAY_MS }) }), { maxLength: 40 }),
    });

    it('live usage: each threshold fires exactly once per (pool, period) it is reached in, at the event that reaches it', () => {
      fc.assert(
        fc.property(scenarioArb, ({ limits, cycle, usage }) => {
          const live = [...usage].sort((a, b) => a.at - b.at);
          const steps: Step[] = [
            { command: subscriptionCommand({ plan: 'enterprise', cycle, customLimits: limits }, 'sub', T0), now: T0 },
            ...live.map((u, i) => ({ command: usageCommand(u.usage, `u${i}`, T0 + u.at), now: T0 + u.at })),
          ];
          const { events } = run(steps);

          // the model: cumulative usage per (period, pool) from catalog prices, periods from the anchor
          const family = resetFamilyOf('enterprise', cycle);
          const cumulative = new Map<string, number>();
          const expected: string[] = [];
          live.forEach((u, i) => {
            const { pool, amount } = priceOf(u.usage);
            const period = periodContaining(T0, family, T0 + u.at);
            const key = `${period.start}|${pool}`;
            const before = cumulative.get(key) ?? 0;
            const after = before + amount;
            cumulative.set(key, after);
            for (const th of thresholds)
              if (!reached(before, limits[pool], th) && reached(after, limits[pool], th)) expected.push(`${key}|${th}|u${i}|${after}`);
          });
          const actual = crossings(events).map((e) => `${Date.parse(e.data.periodStart)}|${e.data.pool}|${e.data.threshold}|${e.data.causationId}|${e.data.used}`);
          expect(actual).toEqual(expected);
          for (const e of crossings(events)) expect(e.data.limit).toBe(limits[e.data.pool]);
        }),
        { numRuns: 200 },
      );
    });

    it('any arrival order, late events, resets: a threshold never fires twice for the same (pool, period) without a subscription change', () => {
      fc.assert(
        fc.property(
          scenarioArb,
          fc.array(fc.integer({ min: 0, max: 40 * DAY_MS }), { maxLength: 40 }),
          fc.array(fc.nat(), { maxLength: 10 }),
          ({ limits, cycle, usage }, lateness, resetsAfter) => {
            let now = T0;
            const steps: Step[] = [{ command: subscriptionCommand({ plan: 'enterprise', cycle, customLimits: limits }, 'sub', T0), now }];
            usage.forEach((u, i) => {
              now = Math.max(now, T0 + u.at + (lateness[i] ?? 0));
              steps.push({ command: usageCommand(u.usage, `u${i}`, T0 + u.at), now });
              if (resetsAfter.includes(i)) steps.push({ command: { type: 'ResetDuePeriods', spaceId: SPACE_ID }, now });
            });
            const { events, state } = run(steps);
            const keys = crossings(events).map((e) => `${e.data.periodStart}|${e.data.pool}|${e.data.threshold}`);
            expect(new Set(keys).size).toBe(keys.length);
            expect(events.filter((e) => e.type === 'ThresholdRearmed')).toEqual([]);
            // a crossing only ever reports a threshold its usage reached
            for (const e of crossings(events)) expect(reached(e.data.used, e.data.limit, e.data.threshold)).toBe(true);
            // the period open at the last clock was open at every decision that counted in it (the clock only
            // moves forward and nothing occurs in the future): every threshold it reached has fired
            const current = [...state.periods.values()].find((p) => p.start <= now && (p.end === null || now < p.end));
            if (current)
              for (const pool of Object.keys(limits) as Pool[])
                for (const th of thresholds)
                  if (reached(current.used[pool], (limits as Limits)[pool], th))
                    expect(keys).toContain(`${new Date(current.start).toISOString()}|${pool}|${th}`);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  it('(e) ResetDuePeriods never emits the same boundary twice, whatever the clock does', () => {
    fc.assert(
      fc.property(lifeArb(25), fc.array(fc.integer({ min: -60 * DAY_MS, max: 500 * DAY_MS }), { maxLength: 12 }), (steps, clocks) => {
        // the life (with its own resets and subscription changes), then resets at clocks in any order
        const extra: Step[] = clocks.map((c) => ({ command: { type: 'ResetDuePeriods', spaceId: SPACE_ID }, now: T0 + c }));
        const { events, state } = run([...steps, ...extra]);
        const starts = events.filter((e) => e.type === 'PeriodReset').map((e) => e.data.periodStart as string);
        expect(new Set(starts).size).toBe(starts.length);
        // ids are derived from the boundary: unique too (the relay dedupes on them)
        const ids = events.map((e) => e.id);
        expect(new Set(ids).size).toBe(ids.length);
        // catching up at the latest clock seen, then asking again at that clock, emits nothing new
        const latest = Math.max(...[...steps, ...extra].map((s) => s.now), T0);
        const caughtUp = decideAll(state, [{ type: 'ResetDuePeriods', spaceId: SPACE_ID }], ctx(latest));
        for (const e of caughtUp.events) if (e.type === 'PeriodReset') expect(starts).not.toContain(e.data.periodStart);
        expect(caughtUp.events.every((e) => e.type === 'PeriodReset')).toBe(true);
        expect(decideAllResets(caughtUp.state, latest)).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('(e) with the subscriptions fixed first, resets at any clocks emit exactly the boundaries up to the latest clock, in order', () => {
    fc.assert(
      fc.property(lifeArb(20), fc.array(fc.integer({ min: -60 * DAY_MS, max: 500 * DAY_MS }), { minLength: 1, maxLength: 12 }), (life, clocks) => {
        const subs = life.filter((s) => s.command.type === 'ChangeSubscription');
        const base = run(subs).state;
        const resets: Step[] = clocks.map((c) => ({ command: { type: 'ResetDuePeriods', spaceId: SPACE_ID }, now: T0 + c }));
        const { events } = run(resets, base);
        // one PeriodReset per decision at most; together they cover exactly the boundaries, in order
        const expected = resetBoundaries(base.timeline, Number.NEGATIVE_INFINITY, T0 + Math.max(...clocks));
        let next = 0;
        for (const e of events) {
          expect(e.type).toBe('PeriodReset');
          const d = e.data as { periodStart: string; firstBoundary: string; boundariesCovered: number };
          expect(Date.parse(d.firstBoundary)).toBe(expected[next]);
          next += d.boundariesCovered;
          expect(Date.parse(d.periodStart)).toBe(expected[next - 1]);
        }
        expect(next).toBe(expected.length);
        const perDecision = resets.map((r) => decideAll(base, [r.command], ctx(r.now)).events.length);
        for (const n of perDecision) expect(n).toBeLessThanOrEqual(1);
      }),
      { numRuns: 150 },
    );
  });
});

function decideAllResets(state: SpaceState, now: number): IdentifiedSpaceEvent[] {
  return decideAll(state, [{ type: 'ResetDuePeriods', spaceId: SPACE_ID }], ctx(now)).events;
}
