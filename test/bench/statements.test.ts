/**
 * The short form of bench/statements.bench.ts (SQLite stream reads next to a raw indexed read and to
 * the statements' previous forms). No timing is asserted (timings belong to bench/RESULTS.md):
 * every figure is produced, and the adapter's reads return each stream whole.
 */
import { runStatementsBench } from '../../bench/statements.bench';

jest.setTimeout(60_000);

test('statements: every form measured on the same store, a ratio to the raw read for each', async () => {
  const r = await runStatementsBench('smoke');
  const figures = ['raw', 'readStream', 'coldStarts', 'previousReadStream', 'rawTip', 'tip', 'previousTip'] as const;
  for (const f of figures) expect(r.result[f]).toBeGreaterThan(0);
  expect(r.result.sqlite).toMatch(/^\d+\.\d+\.\d+$/);
  const table = r.lines.filter((l) => l.startsWith('|')).join('\n');
  expect(table).toMatch(/\| raw indexed read \(baseline\) \| [\d,]+ \| 1\.00x \|/);
  expect(table).toMatch(/\| adapter `readStream`, one stream at a time \| [\d,]+ \| \d+\.\d\dx \|/);
  expect(table).toMatch(/\| previous tip read .* \| [\d,]+ \| \d+\.\d\dx \|/);
});
