/**
 * Issue 8 item 3: the reset scheduler is safe with several replicas. Two schedulers, each with its
 * own connections and its own ingest service (as two processes would have), tick at the same time
 * on one PostgreSQL store while boundaries fall due: every Space gets exactly one PeriodReset per
 * boundary (deterministic ids + exact expected revisions; the loser of a race re-decides and
 * finds nothing left to do).
 */
import { spaceStreamName } from '@metering/domain';
import { Projector } from '../../apps/metering/src/projection/projector';
import { dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { MovableClock, quiet, schedulerProcess } from './scheduler-process';

jest.setTimeout(120_000);
test('two schedulers on one PostgreSQL store append exactly one PeriodReset per Space per scheduler step, covering each boundary once', async () => {
  const schema = freshSchemaName('sched2');
  const clock = new MovableClock(Date.parse('2026-01-20T00:00:00Z'));
  const a = await schedulerProcess(schema, clock);
  const b = await schedulerProcess(schema, clock);
  const projector = new Projector(a.store, a.readModel, quiet, 20);
  try {
    const spaces = Array.from({ length: 40 }, (_, i) => `sched-${i}`);
    const subs = await a.ingest.ingest(
      spaces.map((spaceId, i) => ({
        type: 'subscription-changed' as const,
        eventId: `sub-${spaceId}`,
        spaceId,
        plan: 'pro',
        cycle: (i % 4 === 0 ? 'weekly' : 'monthly') as 'weekly' | 'monthly',
        effectiveAt: '2026-01-15T09:00:00Z',
      })),
    );
    expect(subs.every((o) => o.outcome === 'accepted')).toBe(true);
    await projector.start();

    // Boundaries fall due in three steps; each time both replicas tick at once, several times,
    // while the projection follows (so the read model may still list a Space as due).
    let resetSpaces = 0;
    for (const at of ['2026-02-16T00:00:00Z', '2026-03-16T00:00:00Z', '2026-04-16T00:00:00Z']) {
      clock.t = Date.parse(at);
      for (let round = 0; round < 3; round++) {
        const [x, y] = await Promise.all([a.scheduler.tick(), b.scheduler.tick()]);
        resetSpaces += x + y;
      }
      await projector.catchUp();
      const left = await a.readModel.dueForReset(clock.t, 100);
      expect(left).toEqual([]);
    }
    expect(resetSpaces).toBeGreaterThan(0);

    const anchor = Date.parse('2026-01-15T09:00:00Z');
    for (const [i, spaceId] of spaces.entries()) {
      const events = await a.store.readStream(spaceStreamName(spaceId));
      const resets = events.filter((e) => e.type === 'PeriodReset');
      const starts = resets.map((e) => (e.data as { periodStart: string }).periodStart);
      // Exactly one per boundary, in order, none twice.
      expect(new Set(starts).size).toBe(starts.length);
      expect(new Set(resets.map((e) => e.id)).size).toBe(resets.length);
      if (i % 4 === 0) {
        // One reset per scheduler step, each covering the weeks that fell due since the last one:
        // together every weekly boundary, once, contiguous.
        const weeks = Math.floor((Date.parse('2026-04-16T00:00:00Z') - anchor) / (7 * 86_400_000));
        const covered = resets.map((e) => e.data as { firstBoundary: string; periodStart: string; boundariesCovered: number });
        expect(covered).toHaveLength(3);
        expect(covered.reduce((n, c) => n + c.boundariesCovered, 0)).toBe(weeks);
        expect(covered[0].firstBoundary).toBe('2026-01-22T09:00:00.000Z');
        for (let k = 1; k < covered.length; k++)
          expect(Date.parse(covered[k].firstBoundary) - Date.parse(covered[k - 1].periodStart)).toBe(7 * 86_400_000);
      } else expect(starts).toEqual(['2026-02-15T09:00:00.000Z', '2026-03-15T09:00:00.000Z', '2026-04-15T09:00:00.000Z']);
      expect(events.map((e) => e.revision)).toEqual(events.map((_, k) => k));
    }
  } finally {
    await projector.stop();
    await a.scheduler.stop();
    await b.scheduler.stop();
    await a.close();
    await b.close();
    await dropSchema(schema);
  }
});
