/**
 * The new-user walk-through of issue 2, against the built service started as a process on the
 * embedded SQLite default: subscribe to pro monthly two months ago, export 400 images now,
 * see 400/500 (80 %) and exactly one 80 % notification, resend everything (nothing changes),
 * and find the two missed boundaries caught up by one reset of the scheduler.
 *
 * It runs twice: on the embedded store as shipped, and on the same store with its positions mapped
 * to sparse, gapped values (METERING_TEST_SPARSE_POSITIONS=1, a test-only hook; KurrentDB's
 * positions are sparse byte offsets): any code that adds to, subtracts or invents a position
 * fails the second run.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { addMonthsClamped } from '@metering/domain';
import { type RunningApp, api, eventually, startApp } from '../support/app-process';

jest.setTimeout(90_000);

describe.each([
  ['the embedded default', {}],
  ['the embedded store with sparse positions', { METERING_TEST_SPARSE_POSITIONS: '1' }],
] as [string, Record<string, string>][])('walk-through on %s', (_name, storeEnv) => {
  let app: RunningApp;
  const space = `space-${randomUUID().slice(0, 8)}`;
  const now = Date.now();
  const effectiveAt = new Date(addMonthsClamped(now, -2) - 3_600_000).toISOString();
  const exports = Array.from({ length: 4 }, (_, i) => ({
    type: 'batch-exported',
    eventId: randomUUID(),
    spaceId: space,
    userId: `user-${i}`,
    batchId: `batch-${i}`,
    images: 100,
    platform: 'web',
    occurredAt: new Date(now).toISOString(),
  }));

  beforeAll(async () => {
    app = await startApp({ SCHEDULER_INTERVAL_MS: '200', ...storeEnv });
  });

  afterAll(async () => {
    await app?.stop();
    if (app) fs.rmSync(app.dataDir, { recursive: true, force: true });
  });

  it('an unknown Space reads as free with zero usage', async () => {
    const r = await api(app.url, 'GET', `/v1/spaces/never-seen-${space}/usage`);
    expect(r.status).toBe(200);
    expect(r.body.plan).toBe('free');
    expect(r.body.nextResetAt).toBeNull();
    expect(r.body.pools.batch_exports).toEqual({ used: 0, limit: 0, remaining: 0, percent: 0, over: false });
    expect(r.body.pools.ai_image_credits.used).toBe(0);
  });

  it('subscribes the Space to pro monthly effective two months ago', async () => {
    const r = await api(app.url, 'PUT', `/v1/spaces/${space}/subscription`, { plan: 'pro', cycle: 'monthly', effectiveAt });
    expect(r.status).toBe(200);
    expect(r.body.outcome).toBe('accepted');
    expect(r.body.usage.plan).toBe('pro');
    expect(r.body.usage.pools.batch_exports.limit).toBe(500);
  });

  it('400 exported images now show as 400 of 500 (80 %) with exactly one 80 % notification', async () => {
    const r = await api(app.url, 'POST', '/v1/events', exports);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 4, duplicates: 0, rejected: 0 });

    const usage = await api(app.url, 'GET', `/v1/spaces/${space}/usage`);
    expect(usage.body.pools.batch_exports).toEqual({ used: 400, limit: 500, remaining: 100, percent: 80, over: false });
    const periodStart = Date.parse(usage.body.periodStart);
    expect(periodStart).toBeLessThanOrEqual(now);
    expect(Date.parse(usage.body.nextResetAt)).toBeGreaterThan(now);

    const n = await api(app.url, 'GET', '/v1/notifications?limit=1000');
    const crossings = n.body.notifications.filter((x: any) => x.type === 'ThresholdCrossed' && x.data.spaceId === space);
    expect(crossings).toHaveLength(1);
    expect(crossings[0].data).toMatchObject({ pool: 'batch_exports', threshold: 80, used: 400, limit: 500 });

    // `since` takes back only the opaque `next` tokens the endpoint hands out.
    const first = await api(app.url, 'GET', '/v1/notifications?limit=1');
    expect(first.status).toBe(200);
    const rest = await api(app.url, 'GET', `/v1/notifications?limit=1000&since=${first.body.next}`);
    expect(rest.status).toBe(200);
    // The two pages hold every notification the first read saw, in the same order (the scheduler,
    // every 200 ms, may have recorded more since: those can only come after).
    const paged = [...first.body.notifications, ...rest.body.notifications].map((x: any) => x.id);
    expect(paged.slice(0, n.body.notifications.length)).toEqual(n.body.notifications.map((x: any) => x.id));
    // A position the store never handed out: between two real ones on the sparse store; on a dense
    // store next + 1 may be real (a reset or another Space's notification recorded since), so far past the head.
    const never = storeEnv.METERING_TEST_SPARSE_POSITIONS ? BigInt(first.body.next) + 1n : 1n << 62n;
    const invented = await api(app.url, 'GET', `/v1/notifications?since=${never}`);
    expect(invented.status).toBe(400);
    expect(invented.body.errors[0]).toMatchObject({ field: 'since', rule: 'position' });
    expect((await api(app.url, 'GET', '/v1/notifications?since=0')).status).toBe(200);
    // The hook is really on: positions handed out are the sparse ones (p * 1000 + (p % 7) * 100 + 7).
    if (storeEnv.METERING_TEST_SPARSE_POSITIONS) expect(BigInt(first.body.next) % 100n).toBe(7n);
  });

  it('sending the same 400 events again changes nothing', async () => {
    const before = await api(app.url, 'GET', `/v1/spaces/${space}/events?limit=1000`);
    const r = await api(app.url, 'POST', '/v1/events', exports);
    expect(r.body).toMatchObject({ accepted: 0, duplicates: 4, rejected: 0 });
    const usage = await api(app.url, 'GET', `/v1/spaces/${space}/usage`);
    expect(usage.body.pools.batch_exports.used).toBe(400);
    const after = await api(app.url, 'GET', `/v1/spaces/${space}/events?limit=1000`);
    const nonReset = (b: any) => b.events.filter((e: any) => e.type !== 'PeriodReset');
    expect(nonReset(after.body)).toEqual(nonReset(before.body));
  });

  it('the scheduler caught up both missed boundaries with ONE reset (one notification), once', async () => {
    const resets = async () =>
      (await api(app.url, 'GET', `/v1/spaces/${space}/events?limit=1000`)).body.events.filter((e: any) => e.type === 'PeriodReset');
    const found = await eventually(resets, (r) => r.length >= 1);
    const anchor = Date.parse(effectiveAt);
    expect(found.map((e: any) => [e.data.firstBoundary, e.data.periodStart, e.data.boundariesCovered])).toEqual([
      [new Date(addMonthsClamped(anchor, 1)).toISOString(), new Date(addMonthsClamped(anchor, 2)).toISOString(), 2],
    ]);
    // Several more scheduler ticks append nothing more.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await resets()).toHaveLength(1);
    const n = await api(app.url, 'GET', '/v1/notifications?limit=1000');
    expect(n.body.notifications.filter((x: any) => x.type === 'PeriodReset' && x.data.spaceId === space)).toHaveLength(1);
  });

  it('rejects bad input with the field and the rule, and keeps the valid events of the same request', async () => {
    const good = { ...exports[0], eventId: randomUUID(), images: 1 };
    const r = await api(app.url, 'POST', '/v1/events', [
      { ...good, eventId: randomUUID(), type: 'generation-performed', feature: 'teleport', medium: 'image', generations: 1, images: undefined, batchId: undefined, platform: undefined },
      { ...good, eventId: randomUUID(), images: 101 },
      { ...good, eventId: randomUUID(), occurredAt: 'yesterday' },
      good,
    ]);
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: any) => x.outcome)).toEqual(['rejected', 'rejected', 'rejected', 'accepted']);
    expect(r.body.results[0].errors[0]).toMatchObject({ field: 'feature', rule: 'known_feature' });
    expect(r.body.results[1].errors[0]).toMatchObject({ field: 'images', rule: 'per_batch_cap' });
    expect(r.body.results[2].errors[0].field).toBe('occurredAt');
  });

  it('answers the entitlement check and keeps state across a restart', async () => {
    const ok = await api(app.url, 'POST', `/v1/spaces/${space}/entitlements/check`, { batchImages: 100, platform: 'web' });
    expect(ok.body).toMatchObject({ allowed: false, reason: 'insufficient_remaining', remaining: 99, cost: 100 });
    const usageBefore = await api(app.url, 'GET', `/v1/spaces/${space}/usage`);
    await app.stop();
    app = await startApp({ SCHEDULER_INTERVAL_MS: '200', ...storeEnv }, app.dataDir);
    const usageAfter = await api(app.url, 'GET', `/v1/spaces/${space}/usage`);
    expect({ ...usageAfter.body, asOf: null }).toEqual({ ...usageBefore.body, asOf: null });
  });
});
