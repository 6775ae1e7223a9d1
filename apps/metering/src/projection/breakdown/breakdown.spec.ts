import fc from 'fast-check';
import { type WatchChange, type WatchRow, watchRuns, watchSetReplaces } from './breakdown';

type Table = Map<string, WatchRow>;
const keyOf = (r: Pick<WatchRow, 'spaceId' | 'pool' | 'threshold'>) => `${r.spaceId}|${r.pool}|${r.threshold}`;

/** What the adapters' statements do to the watch table, one change at a time (the reference). */
function applyOneByOne(table: Table, changes: readonly WatchChange[]): void {
  for (const c of changes) {
    if (c.kind === 'set') {
      const kept = table.get(keyOf(c.row));
      if (kept === undefined || watchSetReplaces(c.row, kept)) table.set(keyOf(c.row), c.row);
    } else if (c.kind === 'reset') {
      for (const [k, r] of table) if (r.spaceId === c.spaceId && r.periodStart < c.periodStart) table.delete(k);
    } else {
      for (const [k, r] of table) if (r.spaceId === c.spaceId && r.periodStart === c.periodStart) table.delete(k);
    }
  }
}

/** What one statement per run does: an upsert of distinct keys (each against the stored row), or a delete joined to every reset. */
function applyRuns(table: Table, changes: readonly WatchChange[]): number {
  const runs = watchRuns(changes);
  for (const run of runs) {
    if (run.kind === 'set') {
      const keys = run.rows.map(keyOf);
      expect(new Set(keys).size).toBe(keys.length); // ON CONFLICT may not touch a row twice in one statement
      for (const r of run.rows) {
        const kept = table.get(keyOf(r));
        if (kept === undefined || watchSetReplaces(r, kept)) table.set(keyOf(r), r);
      }
    } else if (run.kind === 'reset') {
      for (const [k, r] of table) if (run.resets.some((x) => x.spaceId === r.spaceId && r.periodStart < x.periodStart)) table.delete(k);
    } else {
      for (const [k, r] of table) if (run.resets.some((x) => x.spaceId === r.spaceId && r.periodStart === x.periodStart)) table.delete(k);
    }
  }
  return runs.length;
}

const arbRow = fc.record({
  spaceId: fc.constantFrom('a', 'b'),
  pool: fc.constantFrom('ai_image_credits' as const, 'batch_exports' as const),
  threshold: fc.constantFrom(80, 100),
  periodStart: fc.integer({ min: 0, max: 3 }),
  state: fc.constantFrom('fired' as const, 'rearmed' as const),
  used: fc.nat(100),
  limit: fc.constant(100),
  position: fc.nat().map(String),
  recordedAt: fc.constant('2026-12-01T00:00:00.000Z'),
});
const arbChange: fc.Arbitrary<WatchChange> = fc.oneof(
  { weight: 4, arbitrary: arbRow.map((row) => ({ kind: 'set' as const, row })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), spaceId: fc.constantFrom('a', 'b'), periodStart: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), spaceId: fc.constantFrom('a', 'b'), periodStart: fc.integer({ min: 0, max: 3 }) }) },
);

describe('watchRuns', () => {
  test('one statement per run leaves the table a change-by-change apply leaves, from any stored rows', () => {
    fc.assert(
      fc.property(fc.array(arbRow, { maxLength: 8 }), fc.array(arbChange, { maxLength: 40 }), (stored, changes) => {
        const seed = () => new Map(stored.map((r) => [keyOf(r), r]));
        const expected = seed();
        applyOneByOne(expected, changes);
        const actual = seed();
        applyRuns(actual, changes);
        const sorted = (t: Table) => [...t].sort(([a], [b]) => a.localeCompare(b));
        expect(sorted(actual)).toEqual(sorted(expected));
      }),
      { numRuns: 2000 },
    );
  });

  test('consecutive changes of a kind share a statement', () => {
    const set = (spaceId: string, periodStart: number): WatchChange => ({
      kind: 'set',
      row: { spaceId, pool: 'ai_image_credits', threshold: 80, periodStart, state: 'fired', used: 80, limit: 100, position: '1', recordedAt: 'x' },
    });
    const runs = watchRuns([set('a', 1), set('b', 1), set('a', 2), set('a', 1), { kind: 'reset', spaceId: 'a', periodStart: 3 }, { kind: 'reset', spaceId: 'b', periodStart: 3 }, { kind: 'clear', spaceId: 'a', periodStart: 3 }, { kind: 'clear', spaceId: 'b', periodStart: 3 }, set('a', 3)]);
    expect(runs.map((r) => r.kind)).toEqual(['set', 'reset', 'clear', 'set']);
    expect(runs[2]).toEqual({ kind: 'clear', resets: [{ spaceId: 'a', periodStart: 3 }, { spaceId: 'b', periodStart: 3 }] });
    // a's second period wins over its first, set before and after it.
    expect(runs[0]).toEqual({ kind: 'set', rows: [set('a', 2), set('b', 1)].map((c) => (c as { row: WatchRow }).row) });
    expect(watchRuns([])).toEqual([]);
  });
});
