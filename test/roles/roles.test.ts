/**
 * Issue 8 item 3, ROLES: the built service split in two processes on one store (PostgreSQL: one
 * schema; SQLite: one DATA_DIR, so the same files), one with `api`, one with `projector,scheduler`.
 * The API answers with read-your-writes (it waits for the other process's projection), the scheduler there appends the missed resets, and both serve
 * /health/* and /metrics; the non-api process has no /v1 route.
 */
import { randomUUID } from 'node:crypto';
import { api, eventually } from '../support/app-process';
import { sharedStore } from '../support/shared-store';

jest.setTimeout(120_000);

test.each(['postgres', 'sqlite'] as const)('api and projector+scheduler in two processes on one store (%s)', async (kind) => {
  const store = sharedStore(kind, 'roles', { LOG_LEVEL: 'warn', SCHEDULER_INTERVAL_MS: '200' });
  const worker = await store.start({ ROLES: 'projector,scheduler' });
  // SQLite: the api process opens the worker's files.
  const front = await store.start({ ROLES: 'api' });
  try {
    const space = `r-${randomUUID().slice(0, 8)}`;
    const effectiveAt = new Date(Date.now() - 70 * 86_400_000).toISOString();
    const sub = await api(front.url, 'PUT', `/v1/spaces/${space}/subscription`, { plan: 'pro', cycle: 'monthly', effectiveAt });
    expect(sub.status).toBe(200);
    // Read-your-writes across processes: the usage in the answer already shows the new plan.
    expect(sub.body.usage.plan).toBe('pro');
    const posted = await api(front.url, 'POST', '/v1/events', {
      type: 'generation-performed', eventId: randomUUID(), spaceId: space, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 2, occurredAt: new Date().toISOString(),
    });
    expect(posted.body.accepted).toBe(1);
    expect((await api(front.url, 'GET', `/v1/spaces/${space}/usage`)).body.pools.ai_image_credits.used).toBeGreaterThan(0);

    // The scheduler in the worker catches up the two missed boundaries with one reset.
    const resets = await eventually(
      async () =>
        ((await api(front.url, 'GET', `/v1/spaces/${space}/events?limit=100`)).body.events as { type: string; data: { boundariesCovered?: number } }[]).filter(
          (e) => e.type === 'PeriodReset',
        ),
      (r) => r.length >= 1,
    );
    expect(resets.map((e) => e.data.boundariesCovered)).toEqual([2]);

    expect((await fetch(`${worker.url}/v1/spaces/${space}/usage`)).status).toBe(404);
    for (const app of [worker, front]) {
      expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
      expect((await fetch(`${app.url}/metrics`)).status).toBe(200);
    }
    expect((await api(worker.url, 'GET', '/health/ready')).body.roles).toEqual(['projector', 'scheduler']);
    expect((await api(front.url, 'GET', '/health/ready')).body.roles).toEqual(['api']);
    expect(await (await fetch(`${worker.url}/metrics`)).text()).toMatch(/metering_events_appended_total\{type="PeriodReset",source="scheduler"\} 1/);
  } finally {
    await front.stop();
    await worker.stop();
    await store.remove();
  }
});
