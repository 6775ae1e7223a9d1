/**
 * @metering/client against the built service, started as a process with API keys: every method,
 * its typed answer (checked against the OpenAPI document the types are generated from), each typed
 * error, and retries that are safe because the eventId is deterministic.
 */
import {
  MeteringClient,
  MeteringConflictError,
  MeteringRejectedError,
  MeteringUnauthorizedError,
  MeteringUnavailableError,
  eventIdFor,
  generationPayload,
} from '@metering/client';
import { type RunningApp, freePort, startApp } from '../support/app-process';
import { shapeDiff } from './openapi-shape';

const INGEST_KEY = 'read+ingest=client-ingest-key-0123456789';
const READ_KEY = 'read=client-read-only-key-012345';
const key = (entry: string) => entry.split('=')[1];

describe('MeteringClient over HTTP (built service)', () => {
  let app: RunningApp;
  let client: MeteringClient;
  let doc: { components: { schemas: Record<string, never> } };
  const space = `client-${process.pid}`;
  const now = Date.now();
  const at = (msAgo: number) => new Date(now - msAgo).toISOString();

  beforeAll(async () => {
    app = await startApp({ API_KEYS: `${INGEST_KEY},${READ_KEY}`, LOG_LEVEL: 'warn' });
    client = new MeteringClient({ baseUrl: app.url, apiKey: key(INGEST_KEY), timeoutMs: 5000, retries: 2 });
    doc = (await (await fetch(`${app.url}/docs-json`)).json()) as typeof doc;
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('changes a subscription and answers the usage view after it', async () => {
    const answer = await client.changeSubscription(space, { plan: 'pro', cycle: 'monthly', effectiveAt: at(3_600_000) });
    expect(shapeDiff(doc, 'SubscriptionAnswerDoc', answer)).toEqual([]);
    expect(answer).toMatchObject({ outcome: 'accepted', spaceId: space, usage: { plan: 'pro', cycle: 'monthly' } });
    expect(answer.usage.pools.ai_image_credits).toEqual({ used: 0, limit: 125, remaining: 125, percent: 0, over: false });
    // The same change again (same derived eventId): recorded once.
    const again = await client.changeSubscription(space, { plan: 'pro', cycle: 'monthly', effectiveAt: new Date(now - 3_600_000) });
    expect(again.outcome).toBe('duplicate');
    expect(again.eventId).toBe(answer.eventId);
  });

  it('records generations and batch exports once, whatever the retries', async () => {
    const gen = { spaceId: space, userId: 'ann', feature: 'virtual_model', medium: 'image' as const, generations: 2, occurredAt: at(60_000), sourceId: 'job-1/0' };
    const first = await client.recordGeneration(gen);
    expect(first).toEqual({ outcome: 'accepted', eventId: eventIdFor('generation-performed', space, 'source', 'job-1/0'), spaceId: space, position: expect.stringMatching(/^\d+$/) });
    // The AI service retries the same generation (same sourceId): the same id, no second charge.
    expect(await client.recordGeneration({ ...gen, occurredAt: new Date(now - 60_000) })).toMatchObject({ outcome: 'duplicate', eventId: first.eventId });

    const batch = await client.recordBatchExport({ spaceId: space, userId: 'ann', batchId: 'b-1', images: 100, platform: 'web', occurredAt: at(50_000) });
    expect(batch.outcome).toBe('accepted');
    expect(batch.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const usage = await client.usage(space);
    expect(shapeDiff(doc, 'UsageViewDoc', usage)).toEqual([]);
    expect(usage.pools.ai_image_credits).toMatchObject({ used: 10, limit: 125 }); // 2 x virtual_model (5)
    expect(usage.pools.batch_exports).toMatchObject({ used: 100, limit: 500 });
  });

  it('retries a request whose answer was lost, and the service records it once', async () => {
    let calls = 0;
    const lossy: typeof fetch = async (input, init) => {
      calls++;
      const res = await fetch(input, init);
      if (calls === 1) throw new TypeError('fetch failed (the answer was lost)');
      return res;
    };
    const flaky = new MeteringClient({ baseUrl: app.url, apiKey: key(INGEST_KEY), retries: 3, retryDelayMs: 10, fetch: lossy });
    const before = (await client.usage(space)).pools.ai_image_credits.used;
    const r = await flaky.recordGeneration({ spaceId: space, userId: 'bob', feature: 'ai_backgrounds', medium: 'image', generations: 1, occurredAt: at(40_000), sourceId: 'job-2/0' });
    expect(calls).toBe(2);
    expect(r.outcome).toBe('duplicate'); // the first attempt was recorded; the retry changed nothing
    expect((await client.usage(space)).pools.ai_image_credits.used).toBe(before + 2);
  });

  it('answers the entitlement check, typed', async () => {
    const yes = await client.check(space, { feature: 'virtual_model', generations: 3 });
    expect(shapeDiff(doc, 'EntitlementAnswerDoc', yes)).toEqual([]);
    expect(yes).toMatchObject({ spaceId: space, allowed: true, pool: 'ai_image_credits', cost: 15, reason: 'within_limit' });
    const no = await client.check(space, { batchImages: 101, platform: 'web' });
    expect(no).toMatchObject({ allowed: false, reason: 'per_batch_cap' });
  });

  it('pages through the Space stream', async () => {
    const page = await client.events(space, { limit: 2 });
    expect(shapeDiff(doc, 'EventsPageDoc', page)).toEqual([]);
    expect(page.events).toHaveLength(2);
    expect(page.nextRevision).toBe(2);
    const rest = await client.events(space, { fromRevision: page.nextRevision!, limit: 100 });
    expect(rest.nextRevision).toBeNull();
    expect([...page.events, ...rest.events].map((e) => e.revision)).toEqual([...page.events, ...rest.events].map((_, i) => i));
  });

  it('records many events in one request, each with its outcome', async () => {
    const gen = { type: 'generation-performed' as const, spaceId: space, userId: 'cy', feature: 'ai_shadows', medium: 'image' as const, generations: 1, occurredAt: at(30_000) };
    const answer = await client.recordEvents([
      { ...gen, sourceId: 'job-3/0' },
      { ...gen, sourceId: 'job-3/0' },
      { ...gen, sourceId: 'job-3/1', feature: 'no_such_feature' },
    ]);
    expect(shapeDiff(doc, 'PostEventsAnswerDoc', answer)).toEqual([]);
    expect(answer.results.map((r) => r.outcome)).toEqual(['accepted', 'duplicate', 'rejected']);
    expect(answer.results[2].errors?.[0]).toMatchObject({ field: 'feature', rule: 'known_feature' });
  });

  it('rejects with field and rule', async () => {
    const over = client.recordBatchExport({ spaceId: space, userId: 'ann', batchId: 'b-2', images: 101, platform: 'web', occurredAt: at(20_000) });
    await expect(over).rejects.toBeInstanceOf(MeteringRejectedError);
    await expect(over).rejects.toMatchObject({ field: 'images', rule: 'per_batch_cap' });

    const noPair = client.changeSubscription(space, { plan: 'ultra', cycle: 'weekly' });
    await expect(noPair).rejects.toMatchObject({ kind: 'rejected', status: 422, field: 'cycle', rule: 'plan_cycle_exists' });

    await expect(client.check(space, { feature: 'no_such_feature' })).rejects.toMatchObject({ status: 422, field: 'feature', rule: 'known_feature' });
    await expect(client.usage('not a space')).rejects.toMatchObject({ field: 'spaceId', rule: 'matches' });
  });

  it('a resend with the same eventId and another payload is a MeteringConflictError (409)', async () => {
    const fact = { spaceId: space, userId: 'ann', feature: 'ai_shadows', medium: 'image' as const, generations: 2, occurredAt: at(25_000), eventId: 'client-conflict-1' };
    expect(await client.recordGeneration(fact)).toMatchObject({ outcome: 'accepted' });
    const other = client.recordGeneration({ ...fact, generations: 9 });
    await expect(other).rejects.toBeInstanceOf(MeteringConflictError);
    await expect(other).rejects.toMatchObject({ kind: 'conflict', status: 409 });
  });

  it('tells unauthorized apart: no key (401), a key without the scope (403)', async () => {
    const anonymous = new MeteringClient({ baseUrl: app.url });
    await expect(anonymous.usage(space)).rejects.toMatchObject({ kind: 'unauthorized', status: 401 });
    const reader = new MeteringClient({ baseUrl: app.url, apiKey: key(READ_KEY) });
    expect((await reader.usage(space)).spaceId).toBe(space);
    const denied = reader.recordGeneration({ spaceId: space, userId: 'ann', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: at(10_000) });
    await expect(denied).rejects.toBeInstanceOf(MeteringUnauthorizedError);
    await expect(denied).rejects.toMatchObject({ status: 403, requiredScope: 'ingest' });
  });

  it('is unavailable after its retries when nothing answers', async () => {
    const port = await freePort();
    const down = new MeteringClient({ baseUrl: `http://127.0.0.1:${port}`, retries: 2, retryDelayMs: 5, timeoutMs: 1000 });
    const started = Date.now();
    const err = await down.usage(space).catch((e) => e);
    expect(err).toBeInstanceOf(MeteringUnavailableError);
    expect(err).toMatchObject({ kind: 'unavailable', attempts: 3 });
    expect(err.message).toMatch(/cannot reach/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('derives the same eventId for the same fact, another for another', () => {
    const base = { spaceId: 's', userId: 'u', feature: 'ai_shadows', medium: 'image' as const, generations: 1, occurredAt: '2026-01-01T00:00:00Z' };
    expect(generationPayload(base).eventId).toBe(generationPayload({ ...base, occurredAt: new Date('2026-01-01T00:00:00Z').toISOString() }).eventId);
    expect(generationPayload(base).eventId).not.toBe(generationPayload({ ...base, generations: 2 }).eventId);
    expect(generationPayload({ ...base, sourceId: 'j' }).eventId).toBe(generationPayload({ ...base, generations: 9, sourceId: 'j' }).eventId);
    expect(generationPayload({ ...base, eventId: 'mine-1' }).eventId).toBe('mine-1');
    expect(eventIdFor('generation-performed', 's', 'job', 1)).not.toBe(eventIdFor('generation-performed', 's', 'job', 2));
  });
});
