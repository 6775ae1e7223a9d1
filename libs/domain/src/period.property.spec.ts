import fc from 'fast-check';
import { DAY_MS, WEEK_MS, type Period, periodContaining, periodIndexOf, periodStartAt } from './period';
import { type SpaceState, decideAll, initialSpaceState } from './space';
import { SPACE_ID, defaultCatalog, nameAsEventId } from './testing/given-when-then';
import { type Step, T0, anchorArb, lifeArb } from './testing/arbitraries';
import { periodAt, resetBoundaries, runsOf } from './timeline';

const daysIn = (year: number, month0: number) => [31, (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month0];
const timeOfDay = (ms: number) => ((ms % DAY_MS) + DAY_MS) % DAY_MS;
const contains = (p: Period, t: number) => p.start <= t && (p.end === null || t < p.end);

describe('period math (properties)', () => {
  it('monthly: every start falls on min(anchor day, days in that month) at the anchor time of day; periods are contiguous', () => {
    fc.assert(
      fc.property(anchorArb, fc.integer({ min: -24, max: 120 }), (anchor, k) => {
        const a = new Date(anchor);
        const start = periodStartAt(anchor, 'monthly', k);
        const d = new Date(start);
        const months = a.getUTCFullYear() * 12 + a.getUTCMonth() + k;
        const [year, month0] = [Math.floor(months / 12), ((months % 12) + 12) % 12];
        expect([d.getUTCFullYear(), d.getUTCMonth()]).toEqual([year, month0]);
        expect(d.getUTCDate()).toBe(Math.min(a.getUTCDate(), daysIn(year, month0)));
        expect(timeOfDay(start)).toBe(timeOfDay(anchor));
        // contiguous, non-empty, and the period of its own start
        const next = periodStartAt(anchor, 'monthly', k + 1);
        expect(next).toBeGreaterThan(start);
        expect(next - start).toBeGreaterThanOrEqual(28 * DAY_MS);
        expect(next - start).toBeLessThanOrEqual(31 * DAY_MS);
        expect(periodContaining(anchor, 'monthly', start)).toEqual({ start, end: next });
        expect(periodContaining(anchor, 'monthly', next - 1)).toEqual({ start, end: next });
        expect(periodIndexOf(anchor, 'monthly', start)).toBe(k);
      }),
      { numRuns: 500 },
    );
  });

  it('the period containing t contains t, for every family', () => {
    fc.assert(
      fc.property(anchorArb, fc.integer({ min: -400 * DAY_MS, max: 4000 * DAY_MS }), fc.constantFrom('weekly', 'monthly', 'never'), (anchor, offset, family) => {
        const t = anchor + offset;
        const p = periodContaining(anchor, family, t);
        // 'never' is one period from the anchor on (a run never starts before its anchor)
        if (family === 'never') expect(p).toEqual({ start: anchor, end: null });
        else expect(contains(p, t)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('weekly: starts are exactly 7 days apart, from the anchor instant', () => {
    fc.assert(
      fc.property(anchorArb, fc.integer({ min: -100, max: 600 }), (anchor, k) => {
        const p = periodContaining(anchor, 'weekly', periodStartAt(anchor, 'weekly', k) + 3 * DAY_MS);
        expect(p.start - anchor).toBe(k * WEEK_MS);
        expect(p.end! - p.start).toBe(WEEK_MS);
      }),
      { numRuns: 300 },
    );
  });

  describe('on a Space timeline (subscription changes, re-anchoring, late changes)', () => {
    const timelineOf = (steps: Step[]): SpaceState => {
      let state = initialSpaceState(SPACE_ID);
      const catalog = defaultCatalog();
      for (const s of steps) state = decideAll(state, [s.command], { now: s.now, catalog, eventId: nameAsEventId }).state;
      return state;
    };
    const HORIZON = T0 + 500 * DAY_MS;

    /** Walks the periods from `from` to HORIZON: each next period starts where the previous ended. */
    function walk(state: SpaceState, from: number): Period[] {
      const out: Period[] = [];
      let p = periodAt(state.timeline, from);
      for (let i = 0; i < 1000; i++) {
        out.push(p);
        if (p.end === null || p.end > HORIZON) break;
        p = periodAt(state.timeline, p.end);
      }
      return out;
    }

    it('periods are contiguous, never overlap, never empty, and periodAt(t) contains t', () => {
      fc.assert(
        fc.property(lifeArb(25), fc.array(fc.integer({ min: -30 * DAY_MS, max: 500 * DAY_MS }), { maxLength: 20 }), (steps, offsets) => {
          const state = timelineOf(steps);
          const periods = walk(state, T0 - 60 * DAY_MS);
          for (let i = 0; i < periods.length; i++) {
            const p = periods[i];
            if (p.end !== null) expect(p.end).toBeGreaterThan(p.start);
            if (i > 0) expect(p.start).toBe(periods[i - 1].end);
            expect(periodAt(state.timeline, p.start)).toEqual(p);
          }
          for (const o of offsets) {
            const t = T0 + o;
            const p = periodAt(state.timeline, t);
            expect(contains(p, t)).toBe(true);
            // the same period the walk found: no overlap
            if (t >= periods[0].start) expect(periods).toContainEqual(p);
          }
        }),
        { numRuns: 150 },
      );
    });

    it('reset boundaries are exactly the period starts that are not a run start (a change), each once, in order', () => {
      fc.assert(
        fc.property(lifeArb(25), (steps) => {
          const state = timelineOf(steps);
          const runStarts = new Set(runsOf(state.timeline).map((r) => r.start));
          const starts = walk(state, T0 - 60 * DAY_MS).map((p) => p.start).filter((s) => s > T0 - 60 * DAY_MS);
          const until = HORIZON - 1;
          const expected = starts.filter((s) => !runStarts.has(s) && s <= until);
          const all = resetBoundaries(state.timeline, T0 - 60 * DAY_MS, until);
          expect(all).toEqual(expected);
        }),
        { numRuns: 150 },
      );
    });

    it('resetBoundaries(a, c) = resetBoundaries(a, b) followed by resetBoundaries(b, c)', () => {
      fc.assert(
        fc.property(lifeArb(20), fc.array(fc.integer({ min: -30 * DAY_MS, max: 400 * DAY_MS }), { minLength: 3, maxLength: 3 }), (steps, cuts) => {
          const state = timelineOf(steps);
          const [a, b, c] = cuts.map((x) => T0 + x).sort((x, y) => x - y);
          const whole = resetBoundaries(state.timeline, a, c);
          const parts = [...resetBoundaries(state.timeline, a, b), ...resetBoundaries(state.timeline, b, c)];
          expect(parts).toEqual(whole);
          expect(new Set(whole).size).toBe(whole.length);
        }),
        { numRuns: 150 },
      );
    });
  });
});
