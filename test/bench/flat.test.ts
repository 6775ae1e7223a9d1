/**
 * The short form of bench/flat.bench.ts (issue 14 part 2: ingest flat in the number of Spaces): the
 * same usage workload over few and over many Spaces (and the control: the longer run over few), on
 * SQLite and PostgreSQL, at a small size. No timing is asserted (timings belong to
 * bench/RESULTS.md): every figure is produced, and the totals are exact (every event accepted, each
 * counted once by the read model, each Space cold-loaded), and SQLite's raw limit is measured for
 * each part (the same events written raw, in the store's shape, as rows only and in an experimental layout).
 */
import { runFlatBench } from '../../bench/flat.bench';

jest.setTimeout(120_000);

test('flat: the baseline, the many-Spaces run and the control on both stores, exact totals, a ratio per store, and SQLite\'s raw limit', async () => {
  const r = await runFlatBench('smoke');
  expect(r.runs.map((x) => [x.store, x.part, x.spaces, x.events])).toEqual([
    ['sqlite', 'base', 20, 1_000],
    ['sqlite', 'many', 500, 1_500],
    ['sqlite', 'control', 20, 1_500],
    ['postgres', 'base', 20, 1_000],
    ['postgres', 'many', 500, 1_500],
    ['postgres', 'control', 20, 1_500],
  ]);
  for (const run of r.runs) {
    expect(run.accepted).toBe(run.events);
    expect(run.projectedUsageEvents).toBe(run.events);
    // usage events, and the thresholds some of them crossed
    expect(run.stored).toBeGreaterThanOrEqual(run.events);
    // after the restart each Space's first event is a cold load, and only that (the cache holds them all at this size)
    expect(run.coldLoads).toBe(run.touchedSpaces);
    expect(run.rate).toBeGreaterThan(0);
    // the timed part's projection pages: at least one, every usage event in them, time measured
    expect(run.projection.pages).toBeGreaterThan(0);
    expect(run.projection.pages * run.projection.eventsPerPage).toBeGreaterThanOrEqual(run.events);
    expect(run.projection.usPerEvent).toBeGreaterThan(0);
  }
  expect(r.ratios.sqlite).toBeGreaterThan(0);
  expect(r.ratios.postgres).toBeGreaterThan(0);
  const table = r.lines.filter((l) => l.startsWith('|')).join('\n');
  expect(table).toMatch(/\| SQLite .* \| many Spaces \| 1,500 over 500 \| \*\*[\d,]+\*\* .* \| \*\*\d+\.\d\dx\*\* \|/);
  expect(table).toMatch(/\| PostgreSQL .* \| many Spaces \| 1,500 over 500 \| \*\*[\d,]+\*\* .* \| \*\*\d+\.\d\dx\*\* \|/);
  // the control: the many-Spaces run's length over the baseline's Spaces, its ratio shown, not a
  // target, and the many-Spaces run's ratio to it (the Spaces alone, at the same length)
  expect(table).toMatch(/\| SQLite .* \| control: [^|]* \| 1,500 over 20 \| \*\*[\d,]+\*\* .* \| \d+\.\d\dx \(not a target; the many-Spaces run is \d+\.\d\dx of it\) \|/);
  expect(table).toMatch(/\| PostgreSQL .* \| control: [^|]* \| 1,500 over 20 \| \*\*[\d,]+\*\* .* \| \d+\.\d\dx \(not a target; the many-Spaces run is \d+\.\d\dx of it\) \|/);
  // SQLite's raw limit, in the same run: each part written raw in the store's shape, as rows only, and in the merged layout (an experiment)
  expect(r.raws.map((x) => [x.part, x.shape, x.spaces, x.events])).toEqual([
    ['base', 'store', 20, 1_000],
    ['base', 'rows', 20, 1_000],
    ['base', 'merged', 20, 1_000],
    ['many', 'store', 500, 1_500],
    ['many', 'rows', 500, 1_500],
    ['many', 'merged', 500, 1_500],
    ['control', 'store', 20, 1_500],
    ['control', 'rows', 20, 1_500],
    ['control', 'merged', 20, 1_500],
  ]);
  for (const raw of r.raws) {
    expect(raw.rate).toBeGreaterThan(0);
    expect(raw.cpuUsPerEvent).toBeGreaterThan(0);
    // the merged layout merged its small tables into the large ones during the timed part (at most every 500 rows here)
    if (raw.shape === 'merged') expect(raw.merges).toBeGreaterThanOrEqual(1);
    else expect(raw.merges).toBe(0);
  }
  expect(r.rawRatios.store).toBeGreaterThan(0);
  expect(r.rawRatios.rows).toBeGreaterThan(0);
  expect(r.rawRatios.merged).toBeGreaterThan(0);
  expect(table).toMatch(/\| the store's shape \| many Spaces \| 1,500 over 500 \| \*\*[\d,]+\*\* .* \| \d+\.\d\dx \| \d+\.\d\dx \|/);
  expect(table).toMatch(/\| rows only \(no unique index\) \| control: [^|]* \| 1,500 over 20 \| \*\*[\d,]+\*\* .* \| \d+\.\d\dx \| \d+\.\d\dx \|/);
  expect(r.targets.map((t) => t.what)).toEqual([
    'SQLite: 1,500 events over 500 Spaces >= 0.8x the rate over 20 Spaces',
    'PostgreSQL: 1,500 events over 500 Spaces >= 0.8x the rate over 20 Spaces',
  ]);
});
