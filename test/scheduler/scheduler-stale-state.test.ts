/**
 * Issue 14 part 6: a scheduler replica must not decide "nothing due" on a Space state it cached
 * while ANOTHER process appended to the Space. Each process keeps Space states in memory
 * (SpaceRepository); a stale state is caught by the exact expected revision only when something is
 * appended. Here the scheduler process reset a Space (and cached it); then an ingest process records
 * a change from monthly to weekly, which brings the next boundary forward. When the read model says
 * the Space is due, the scheduler must decide on the stream as stored, not on its stale copy (whose
 * next boundary is weeks away), and append the reset now.
 */
import { type InboundEvent, spaceStreamName } from '@metering/domain';
import { Projector } from '../../apps/metering/src/projection/projector';
import { dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { MovableClock, quiet, schedulerProcess as processOf } from './scheduler-process';

jest.setTimeout(60_000);
test('a scheduler whose cached Space state is stale (another process moved the next boundary forward) still appends the reset when it falls due', async () => {
  const schema = freshSchemaName('schedstale');
  const clock = new MovableClock(Date.parse('2026-01-15T10:00:00Z'));
  const ingestProcess = await processOf(schema, clock);
  const schedulerProcess = await processOf(schema, clock);
  const projector = new Projector(ingestProcess.store, ingestProcess.readModel, quiet, 20);
  const sub = (eventId: string, cycle: 'monthly' | 'weekly', effectiveAt: string): InboundEvent => ({ type: 'subscription-changed', eventId, spaceId: 'stale', plan: 'pro', cycle, effectiveAt });
  try {
    expect((await ingestProcess.ingest.ingest([sub('sub-1', 'monthly', '2026-01-15T09:00:00Z')]))[0].outcome).toBe('accepted');
    await projector.start();

    // The scheduler process appends the February reset (and keeps the Space's state in its cache).
    clock.t = Date.parse('2026-02-16T00:00:00Z');
    await projector.catchUp();
    expect(await schedulerProcess.scheduler.tick()).toBe(1);

    // The ingest process records a change to weekly, effective Feb 20: a new period anchored there,
    // so the next boundary is Feb 27 (the scheduler's cached state still says Mar 15).
    clock.t = Date.parse('2026-02-20T10:00:00Z');
    expect((await ingestProcess.ingest.ingest([sub('sub-2', 'weekly', '2026-02-20T09:00:00Z')]))[0].outcome).toBe('accepted');
    clock.t = Date.parse('2026-02-28T00:00:00Z');
    await projector.catchUp();
    expect(await schedulerProcess.readModel.dueForReset(clock.t, 10)).toEqual(['stale']);

    expect(await schedulerProcess.scheduler.tick()).toBe(1);
    await projector.catchUp();
    const resets = (await ingestProcess.store.readStream(spaceStreamName('stale'))).filter((e) => e.type === 'PeriodReset');
    expect(resets.map((e) => (e.data as { periodStart: string }).periodStart)).toEqual(['2026-02-15T09:00:00.000Z', '2026-02-27T09:00:00.000Z']);
    expect(await schedulerProcess.readModel.dueForReset(clock.t, 10)).toEqual([]);
  } finally {
    await projector.stop();
    await ingestProcess.close();
    await schedulerProcess.close();
    await dropSchema(schema);
  }
});
