/**
 * The short form of `npm run bench:api` (issue 14 part 4): on SQLite and on PostgreSQL, the built
 * service answers the bare endpoint, a cold pass of entitlement checks (each a miss of the
 * in-memory view), the warm check and the usage query without errors, and the check's answer
 * carries `asOf`; the checks still answer while usage is POSTed to the same process, and that
 * ingest is counted; a second process with ROLES=api on the same store answers them while usage
 * is POSTed to the first. No timing is asserted (timings belong to bench/RESULTS.md).
 */
import { runApiBench } from '../../bench/api.bench';

jest.setTimeout(120_000);

test('api: bare endpoint, entitlement check (cold and warm) and usage query on both stores, answered without errors, ratio printed', async () => {
  const r = await runApiBench('smoke');
  expect(r.runs.map((x) => x.store)).toEqual(['sqlite', 'postgres']);
  for (const run of r.runs) {
    expect({ store: run.store, skipped: run.skipped }).toEqual({ store: run.store, skipped: undefined });
    for (const l of [run.bare!, run.cold!, run.check!, run.usage!]) {
      expect(l.requests).toBeGreaterThan(0);
      expect(l.errors + l.non2xx).toBe(0);
    }
    // (How many checks complete in the smoke's half second of ingest depends on the machine: only errors count here.)
    expect(run.checkUnderIngest!.errors + run.checkUnderIngest!.non2xx).toBe(0);
    expect(run.ingestRate).toBeGreaterThan(0);
    // The second process (ROLES=api, same store) answered the checks while the first ingested.
    expect(run.checkApiProcess!.requests).toBeGreaterThan(0);
    expect(run.checkApiProcess!.errors + run.checkApiProcess!.non2xx).toBe(0);
    expect(run.apiProcessIngestRate).toBeGreaterThan(0);
    expect(run.answer).toMatchObject({ allowed: expect.any(Boolean), asOf: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
  }
  // The in-process figure of the check's own work: measured, and more than the lookup it contains.
  expect(r.inProcess.checkNs).toBeGreaterThan(r.inProcess.lookupNs);
  expect(r.lines.some((l) => /The check's own work in process .* [\d,]+ ns per check, against [\d,]+ ns for the Map lookup alone/.test(l))).toBe(true);
  const table = r.lines.filter((l) => l.startsWith('|')).join('\n');
  expect(table).toMatch(/\| SQLite \| POST \/v1\/spaces\/:id\/entitlements\/check \(view warm\) \| \*\*[\d,]+\*\* \| .* \| \*\*\d+\.\d\dx\*\* \|/);
  expect(table).toMatch(/\| PostgreSQL \| POST \/v1\/spaces\/:id\/entitlements\/check \(view warm\) \| \*\*[\d,]+\*\* \| .* \| \*\*\d+\.\d\dx\*\* \|/);
  expect(table).toMatch(/\| SQLite \| POST …\/entitlements\/check at a fixed 2,000 requests\/s while POST \/v1\/events ingests [\d,]+ usage events\/s \(same process\) \| [\d,]+ \| \d+ ms \| \d+ ms \|/);
  for (const store of ['SQLite', 'PostgreSQL'])
    expect(table).toMatch(
      new RegExp(`\\| ${store} \\| POST …/entitlements/check at a fixed 2,000 requests/s to a second process, ROLES=api, while POST /v1/events ingests [\\d,]+ usage events/s into the first \\(CPU: the second process's\\) \\| [\\d,]+ \\| \\d+ ms \\| \\d+ ms \\|`),
    );
});
