/**
 * Product rules of issues 12 and 13 over HTTP, against the built service on the embedded default:
 * one eventId is one fact (a resend with another payload is a 409 conflict naming what differs,
 * an identical one a duplicate), usage older than the corrections window is refused (too_late),
 * a back-dated subscription puts ONE reset into the notification feed, and a cycle flip or a
 * paid -> free -> paid round trip hands out no fresh pool.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { type RunningApp, api, eventually, startApp } from '../support/app-process';

jest.setTimeout(90_000);

describe('product rules over HTTP', () => {
  let app: RunningApp;
  const space = `rules-${randomUUID().slice(0, 8)}`;
  const now = Date.now();
  const gen = (over: Record<string, unknown> = {}) => ({
    type: 'generation-performed', eventId: 'g-1', spaceId: space, userId: 'ann', feature: 'ai_shadows', medium: 'image', generations: 5,
    occurredAt: new Date(now).toISOString(), ...over,
  });

  beforeAll(async () => {
    app = await startApp({ SCHEDULER_INTERVAL_MS: '200', CORRECTION_WINDOW_DAYS: '35' });
    const sub = await api(app.url, 'PUT', `/v1/spaces/${space}/subscription`, { plan: 'pro', cycle: 'weekly', effectiveAt: new Date(now - 365 * 86_400_000).toISOString(), eventId: 'sub-1' });
    expect(sub.status).toBe(200);
  });

  afterAll(async () => {
    await app?.stop();
    if (app) fs.rmSync(app.dataDir, { recursive: true, force: true });
  });

  it('the same eventId with another payload is a 409 conflict naming eventId and the fields that differ; the same payload a duplicate', async () => {
    const first = await api(app.url, 'POST', '/v1/events', gen());
    expect(first.body).toMatchObject({ accepted: 1 });
    const again = await api(app.url, 'POST', '/v1/events', gen());
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 1, conflicts: 0 });
    const other = await api(app.url, 'POST', '/v1/events', gen({ feature: 'virtual_model', generations: 50 }));
    expect(other.status).toBe(409);
    expect(other.body.results[0]).toMatchObject({ outcome: 'conflict', eventId: 'g-1', errors: [{ field: 'eventId', rule: 'event_id_conflict' }] });
    expect(other.body.results[0].errors[0].message).toMatch(/differs in: feature, generations/);
    // in a batch: the per-item outcome, the other events kept
    const batch = await api(app.url, 'POST', '/v1/events', [gen({ userId: 'bob' }), gen({ eventId: 'g-2' })]);
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['conflict', 'accepted']);
    const usage = await api(app.url, 'GET', `/v1/spaces/${space}/usage`);
    expect(usage.body.pools.ai_image_credits.used).toBe(2 * 5); // g-1 and g-2, ai_shadows x5 at 1 credit; nothing from the conflicts
  });

  it('a subscription resent under its eventId with another plan is a 409; the plan stays', async () => {
    const r = await api(app.url, 'PUT', `/v1/spaces/${space}/subscription`, { plan: 'max', cycle: 'weekly', effectiveAt: new Date(now - 365 * 86_400_000).toISOString(), eventId: 'sub-1' });
    expect(r.status).toBe(409);
    expect(r.body.errors[0]).toMatchObject({ field: 'eventId', rule: 'event_id_conflict' });
    expect((await api(app.url, 'GET', `/v1/spaces/${space}/usage`)).body.plan).toBe('pro');
  });

  it('usage older than the corrections window is refused with rule too_late', async () => {
    const r = await api(app.url, 'POST', '/v1/events', gen({ eventId: 'old-1', occurredAt: new Date(now - 40 * 86_400_000).toISOString() }));
    expect(r.body.results[0]).toMatchObject({ outcome: 'rejected', errors: [{ field: 'occurredAt', rule: 'too_late' }] });
    const ok = await api(app.url, 'POST', '/v1/events', gen({ eventId: 'late-1', occurredAt: new Date(now - 30 * 86_400_000).toISOString() }));
    expect(ok.body).toMatchObject({ accepted: 1 });
  });

  it('a weekly plan back-dated a year puts one reset into the notification feed, covering every boundary', async () => {
    const resets: any[] = await eventually(
      async () => (await api(app.url, 'GET', '/v1/notifications?limit=1000')).body.notifications.filter((n: any) => n.type === 'PeriodReset' && n.data.spaceId === space),
      (r: any[]) => r.length >= 1,
    );
    await new Promise((r) => setTimeout(r, 600));
    const all = (await api(app.url, 'GET', '/v1/notifications?limit=1000')).body.notifications.filter((n: any) => n.type === 'PeriodReset' && n.data.spaceId === space);
    expect(all).toHaveLength(1);
    expect(resets[0].data.boundariesCovered).toBeGreaterThanOrEqual(52);
  });

  it('a cycle flip (monthly -> weekly -> monthly) or paid -> free -> paid within a period hands out no fresh pool', async () => {
    const flip = `flip-${randomUUID().slice(0, 8)}`;
    const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
    const H = 3_600_000;
    const put = async (eventId: string, plan: string, cycle: string, effectiveAt: string) =>
      expect((await api(app.url, 'PUT', `/v1/spaces/${flip}/subscription`, { plan, cycle, effectiveAt, eventId })).status).toBe(200);
    await put('s-1', 'pro', 'monthly', iso(48 * H));
    const used = await api(app.url, 'POST', '/v1/events', { ...gen({ eventId: 'u-1', feature: 'ai_backgrounds', generations: 50, occurredAt: iso(47 * H) }), spaceId: flip });
    expect(used.body).toMatchObject({ accepted: 1 }); // 100 of pro monthly's 125 image credits
    await put('s-2', 'pro', 'weekly', iso(5 * H));
    await put('s-3', 'pro', 'monthly', iso(4 * H));
    await put('s-4', 'free', 'monthly', iso(3 * H));
    await put('s-5', 'pro', 'monthly', iso(2 * H));
    const usage = (await api(app.url, 'GET', `/v1/spaces/${flip}/usage`)).body;
    // the period that started with the first subscription goes on (resets now count from the last change)
    expect(usage).toMatchObject({ plan: 'pro', cycle: 'monthly', periodStart: iso(48 * H) });
    expect(usage.pools.ai_image_credits).toMatchObject({ used: 100, limit: 125 });
    const check = await api(app.url, 'POST', `/v1/spaces/${flip}/entitlements/check`, { feature: 'ai_backgrounds', generations: 15 });
    expect(check.body).toMatchObject({ allowed: false, used: 100, limit: 125 }); // 30 more would pass 125
  });
});
