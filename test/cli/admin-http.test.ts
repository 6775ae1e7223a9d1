/**
 * The admin endpoints of the BUILT service share the CLI's audit and balance logic:
 * GET /v1/admin/spaces/:spaceId/audit and /balance?at=. Data written through the HTTP API.
 */
import { api, startApp, type RunningApp } from '../support/app-process';

const DAY = 86_400_000;
const now = Date.now();
const at = (ms: number) => new Date(ms).toISOString();
let app: RunningApp;

beforeAll(async () => {
  app = await startApp({ LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await app?.stop();
});

it('audit is consistent and balance?at excludes later usage', async () => {
  const spaceId = 'admin-a';
  const lateUse = now - 2 * DAY;
  const events = [
    { type: 'subscription-changed', eventId: 's1', spaceId, plan: 'pro', cycle: 'weekly', effectiveAt: at(now - 20 * DAY) },
    { type: 'generation-performed', eventId: 'g1', spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 3, occurredAt: at(now - 10 * DAY) },
    { type: 'generation-performed', eventId: 'g2', spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 4, occurredAt: at(lateUse) },
  ];
  const r = await api(app.url, 'POST', '/v1/events', events);
  expect(r.status).toBe(200);
  expect(r.body.accepted).toBe(3);

  let audit: { status: number; body: any } = { status: 0, body: null };
  for (let i = 0; i < 50; i++) {
    audit = await api(app.url, 'GET', `/v1/admin/spaces/${spaceId}/audit`);
    if (audit.body?.consistent) break;
    await new Promise((res) => setTimeout(res, 100)); // the projection follows asynchronously
  }
  expect(audit.status).toBe(200);
  expect(audit.body).toMatchObject({ spaceId, consistent: true, differences: [] });
  expect(audit.body.periods.map((p: any) => p.used.ai_image_credits)).toEqual([6, 8]);

  const before = await api(app.url, 'GET', `/v1/admin/spaces/${spaceId}/balance?at=${encodeURIComponent(at(lateUse - 1))}`);
  expect(before.status).toBe(200);
  expect(before.body.eventsExcluded).toBeGreaterThan(0);
  expect(before.body.pools.ai_image_credits.used).not.toBe(8);
  const after = await api(app.url, 'GET', `/v1/admin/spaces/${spaceId}/balance?at=${encodeURIComponent(at(lateUse))}`);
  expect(after.body.pools.ai_image_credits.used).toBe(8);

  const bad = await api(app.url, 'GET', `/v1/admin/spaces/${spaceId}/balance`);
  expect(bad.status).toBe(400);
  expect(bad.body.errors[0]).toMatchObject({ field: 'at', rule: 'required' });
});
