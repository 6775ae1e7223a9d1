/**
 * The short form of bench/sqlite-length.bench.ts (the stores' own write rate as they grow: SQLite
 * in three layouts, and PostgreSQL). No timing is asserted (timings belong to bench/RESULTS.md): every window of every
 * layout is measured, the staged layout merged inside its windows, and every figure has its ratios.
 */
import { runSqliteLengthBench } from '../../bench/sqlite-length.bench';

jest.setTimeout(60_000);

test('sqlite-length: each layout measured at each length, with its ratios to its first window and to rows only', async () => {
  const r = await runSqliteLengthBench('smoke');
  const { at, layouts, window } = r.params;
  expect(layouts).toEqual(['rows', 'store', 'staged', 'postgres']);
  expect(r.windows.map((w) => `${w.layout}@${w.at}`)).toEqual(layouts.flatMap((l) => at.map((a) => `${l}@${a}`)));
  // A merge is due every mergeRows rows: the smoke form's windows are long enough for one at least.
  expect(window).toBeGreaterThanOrEqual(2 * r.params.mergeRows);
  for (const w of r.windows) {
    expect(w.rows).toBe(window);
    expect(w.rate).toBeGreaterThan(0);
    if (w.layout === 'staged') expect(w.merges).toBeGreaterThanOrEqual(1);
    else expect(w.merges).toBe(0);
    // PostgreSQL's CPU and writes are its server's: not this process's figures
    if (w.layout === 'postgres') expect([w.cpuUsPerRow, w.kibWrittenPerRow]).toEqual([null, null]);
    else expect(w.cpuUsPerRow).toBeGreaterThan(0);
  }
  const table = r.lines.filter((l) => l.startsWith('| ') && !l.startsWith('| layout'));
  expect(table).toHaveLength(r.windows.length);
  expect(table[0]).toMatch(/^\| SQLite: rows only .* \| 0 \| [\d,]+ \| 1\.00x \| 1\.00x \|/);
  for (const line of table) expect(line).toMatch(/\| [\d,]+ \| \d+\.\d\dx \| \d+\.\d\dx \|/);
});
