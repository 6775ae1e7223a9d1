/**
 * Issue 8 items 4-6 on an in-process app (Fastify): API keys and scopes (401/403 with a clear body),
 * the request size limit (413), health and metrics without a key, readiness 503 when the store is
 * down, Prometheus metrics on a registry per app, ROLES, and the OpenAPI document listing every
 * route with its security scheme.
 */
import type { EventStore } from '@metering/event-store';
import { ConfigError, loadConfig } from '../../apps/metering/src/config';
import { matchKey, parseApiKeys } from '../../apps/metering/src/security/api-keys';
import { scrubbingStdout, secretValues } from '../../apps/metering/src/observability/logging';
import { call, inProcessApp, type TestApp } from '../support/in-process-app';

const READ_INGEST = 'ri-0123456789abcdef-key';
const ADMIN = 'ad-fedcba9876543210-key';
const READ = 'rd-aaaaaaaaaaaaaaaa-key';
const API_KEYS = `read+ingest=${READ_INGEST},admin=${ADMIN},read=${READ}`;
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

describe('configuration', () => {
  const load = (env: Record<string, string>) => () => loadConfig({ DATA_DIR: '/tmp/x', ...env }, '/tmp');
  const problems = (env: Record<string, string>): string[] => {
    try {
      load(env)();
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('parses API_KEYS into scoped keys and never quotes a key in a problem', () => {
    const { keys, problems: p } = parseApiKeys(API_KEYS);
    expect(p).toEqual([]);
    expect(keys.map((k) => [...k.scopes])).toEqual([['read', 'ingest'], ['admin'], ['read']]);
    expect(matchKey(keys, ADMIN)?.index).toBe(2);
    expect(matchKey(keys, 'nope-nope-nope-nope')).toBeNull();
    const bad = problems({ API_KEYS: 'read=short,write=abcdefghijklmnopqrstu,abcdefghijklmnopqrst' });
    expect(bad).toEqual([
      'API_KEYS entry 1 (read): the key must be at least 16 characters',
      'API_KEYS entry 2: unknown scope "write" (scopes are read, ingest, admin)',
      expect.stringMatching(/^API_KEYS entry 3: no "<scopes>=" before the key/),
    ]);
    expect(bad.join('\n')).not.toMatch(/abcdefghijklmnop|short/);
  });

  it('log lines are scrubbed of every secret value given in the environment', () => {
    const secrets = secretValues({
      API_KEYS,
      DATABASE_URL: 'postgres://app:p%40ss-w0rd-long@db:5432/metering',
      KAFKA_SASL_PASSWORD: 'sasl-"quoted"-secret',
    });
    const out: string[] = [];
    const dest = scrubbingStdout(secrets, { write: (s: string) => out.push(s) });
    dest.write(JSON.stringify({ msg: `connect to postgres://app:p%40ss-w0rd-long@db failed (p@ss-w0rd-long)`, key: READ_INGEST, k2: ADMIN, sasl: 'sasl-"quoted"-secret' }) + '\n');
    expect(out.join('')).not.toMatch(/ss-w0rd|ri-0123|ad-fedc|quoted/);
    expect(out.join('')).toContain('[redacted]');
  });

  it('refuses to start open on a non-loopback HOST, allows it on loopback', () => {
    expect(problems({ HOST: '0.0.0.0' })).toEqual([expect.stringMatching(/^API_KEYS: required when HOST="0.0.0.0" is not a loopback address/)]);
    expect(problems({ HOST: '127.0.0.1' })).toEqual([]);
    expect(problems({ HOST: 'localhost' })).toEqual([]);
    expect(problems({ HOST: '::1' })).toEqual([]);
    expect(problems({ HOST: '0.0.0.0', API_KEYS })).toEqual([]);
    // No /v1 routes without the api role: nothing to protect.
    expect(problems({ HOST: '0.0.0.0', ROLES: 'ingest,projector' })).toEqual([]);
  });

  it('validates ROLES and MAX_BODY_BYTES', () => {
    expect(problems({ ROLES: 'api,reporter' })).toEqual([expect.stringMatching(/^ROLES="api,reporter": a comma-separated list of ingest, projector, scheduler, api \(unknown: "reporter"\)/)]);
    expect([...load({ ROLES: 'api, scheduler' })().roles]).toEqual(['api', 'scheduler']);
    expect([...load({})().roles]).toEqual(['ingest', 'projector', 'scheduler', 'api']);
    expect(problems({ MAX_BODY_BYTES: '10' })).toEqual(['MAX_BODY_BYTES="10": must be an integer from 1024 to 104857600']);
  });
});

describe('HTTP API with API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await inProcessApp({ API_KEYS, MAX_BODY_BYTES: '4096' });
  });
  afterAll(async () => {
    await t?.close();
  });

  const sub = { plan: 'pro', cycle: 'monthly', effectiveAt: '2026-01-15T09:00:00Z' };

  it('401 without a key names the headers to send; 401 with an unknown key', async () => {
    const r = await call(t, 'GET', '/v1/spaces/acme/usage');
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'unauthorized', requiredScope: 'read' });
    expect(r.body.message).toContain('Authorization: Bearer <key>');
    expect(r.body.message).toContain('x-api-key');
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    const bad = await call(t, 'GET', '/v1/spaces/acme/usage', undefined, bearer('not-a-key-not-a-key'));
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ error: 'unauthorized', message: 'the API key sent is not valid' });
  });

  it('403 names the scope needed; the right scope passes (Bearer or x-api-key)', async () => {
    const ingestWithRead = await call(t, 'PUT', '/v1/spaces/acme/subscription', sub, bearer(READ));
    expect(ingestWithRead.status).toBe(403);
    expect(ingestWithRead.body).toMatchObject({ error: 'forbidden', requiredScope: 'ingest', keyScopes: ['read'] });
    expect(ingestWithRead.body.message).toBe('this API key lacks the "ingest" scope needed for PUT /v1/spaces/acme/subscription');

    const ok = await call(t, 'PUT', '/v1/spaces/acme/subscription', sub, { 'x-api-key': READ_INGEST });
    expect(ok.status).toBe(200);
    expect(ok.body.outcome).toBe('accepted');

    const events = [
      { type: 'generation-performed', eventId: 'g-1', spaceId: 'acme', userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 2, occurredAt: new Date().toISOString() },
      { type: 'generation-performed', eventId: 'g-bad', spaceId: 'acme', userId: 'u', feature: 'no_such_feature', medium: 'image', generations: 1, occurredAt: new Date().toISOString() },
    ];
    expect((await call(t, 'POST', '/v1/events', events, bearer(ADMIN))).status).toBe(403);
    const posted = await call(t, 'POST', '/v1/events', events, bearer(READ_INGEST));
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ accepted: 1, rejected: 1 });

    expect((await call(t, 'GET', '/v1/spaces/acme/usage', undefined, bearer(READ))).status).toBe(200);
    expect((await call(t, 'GET', '/v1/notifications', undefined, bearer(READ))).status).toBe(200);
    expect((await call(t, 'GET', '/v1/spaces/acme/events', undefined, bearer(READ))).status).toBe(200);
    // The entitlement check is a read: it changes nothing.
    const check = await call(t, 'POST', '/v1/spaces/acme/entitlements/check', { feature: 'virtual_model', generations: 1 }, bearer(READ));
    expect(check.status).toBe(200);
    expect(check.body.spaceId).toBe('acme');

    const admin = await call(t, 'GET', '/v1/admin/spaces/acme/audit', undefined, bearer(READ_INGEST));
    expect(admin.status).toBe(403);
    expect(admin.body.requiredScope).toBe('admin');
    expect((await call(t, 'GET', '/v1/admin/spaces/acme/audit', undefined, bearer(ADMIN))).status).toBe(200);
  });

  it('413 with a clear body beyond MAX_BODY_BYTES; 400 for malformed JSON', async () => {
    const big = JSON.stringify([{ pad: 'x'.repeat(5000) }]);
    const r = await call(t, 'POST', '/v1/events', big, bearer(READ_INGEST));
    expect(r.status).toBe(413);
    expect(r.body).toEqual({
      error: 'payload_too_large',
      errors: [{ field: 'body', rule: 'max_body_bytes', message: 'the request body is larger than 4096 bytes (MAX_BODY_BYTES)' }],
    });
    const bad = await call(t, 'POST', '/v1/events', '{"type":', bearer(READ_INGEST));
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatchObject({ field: 'body', rule: 'json' });
  });

  it('health, metrics and docs answer without a key', async () => {
    expect((await call(t, 'GET', '/health/live')).status).toBe(200);
    const ready = await call(t, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ok', store: 'up', info: { store: { status: 'up' } } });
    expect(ready.body.storeHead).toMatch(/^\d+$/);
    const m = await call(t, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    expect(m.text).toMatch(/metering_events_appended_total\{type="GenerationRecorded",source="http"\} 1/);
    expect(m.text).toMatch(/metering_events_rejected_total\{type="generation-performed",source="http"\} 1/);
    expect(m.text).toMatch(/metering_event_store_append_duration_seconds_count\{op="append",outcome="ok"\} [1-9]/);
    expect(m.text).toMatch(/^metering_projection_lag_events \d+$/m);
    expect(m.text).toContain('metering_consumer_lag_messages');
    expect(m.text).toContain('metering_dead_letters_total');
    expect(m.text).toContain('metering_relay_lag_events');
    expect((await call(t, 'GET', '/docs-json')).status).toBe(200);
    const ui = await call(t, 'GET', '/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger');
    expect((await call(t, 'GET', '/docs/swagger-ui-bundle.js')).status).toBe(200);
  });

  it('the OpenAPI document lists every route, each /v1 route with both key schemes and its scope', async () => {
    const doc = (await call(t, 'GET', '/docs-json')).body;
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      'api-key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-api-key' }),
    });
    const routes: Record<string, string | null> = {
      'post /v1/events': 'ingest',
      'put /v1/spaces/{spaceId}/subscription': 'ingest',
      'get /v1/spaces/{spaceId}/usage': 'read',
      'post /v1/spaces/{spaceId}/entitlements/check': 'read',
      'get /v1/spaces/{spaceId}/events': 'read',
      'get /v1/notifications': 'read',
      'get /v1/spaces/{spaceId}/usage/breakdown': 'read', // issue-15
      'post /v1/spaces/{spaceId}/usage-links': 'ingest', // issue-15 (ingest or admin)
      'get /v1/admin/spaces/{spaceId}/audit': 'admin',
      'get /v1/admin/spaces/{spaceId}/balance': 'admin',
      'get /health/live': null,
      'get /health/ready': null,
      'get /metrics': null,
    };
    const listed: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>))
      for (const [method, op] of Object.entries(ops)) {
        const key = `${method} ${p}`;
        listed.push(key);
        const scope = routes[key];
        if (scope) {
          expect([key, op.security]).toEqual([key, [{ bearer: [scope] }, { 'api-key': [scope] }]]);
          expect(op['x-required-scope']).toBe(scope);
          expect(op.responses['401']).toBeDefined();
          expect(op.responses['403']).toBeDefined();
        } else expect([key, op.security]).toEqual([key, undefined]);
      }
    expect(listed.sort()).toEqual(Object.keys(routes).sort());
  });
});

describe('open mode, roles and readiness', () => {
  it('with no keys on loopback the API is open', async () => {
    const t = await inProcessApp();
    try {
      expect((await call(t, 'GET', '/v1/spaces/acme/usage')).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('ROLES without api serves health and metrics but no /v1 route; two apps keep separate metrics', async () => {
    const a = await inProcessApp({ ROLES: 'scheduler' });
    const b = await inProcessApp({ ROLES: 'projector,api' });
    try {
      expect((await call(a, 'GET', '/v1/spaces/acme/usage')).status).toBe(404);
      expect((await call(a, 'GET', '/health/ready')).body.roles).toEqual(['scheduler']);
      expect((await call(a, 'GET', '/metrics')).status).toBe(200);
      await call(b, 'PUT', '/v1/spaces/acme/subscription', { plan: 'pro', cycle: 'monthly' });
      const mb = (await call(b, 'GET', '/metrics')).text;
      const ma = (await call(a, 'GET', '/metrics')).text;
      expect(mb).toMatch(/metering_events_appended_total\{type="SubscriptionChanged",source="http"\} 1/);
      expect(ma).not.toMatch(/metering_events_appended_total\{type="SubscriptionChanged"/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('/health/ready answers 503 naming the store when the store is down, 200 again when it is back', async () => {
    let down = false;
    const flaky = (s: EventStore): EventStore =>
      new Proxy(s, {
        get(target, prop, receiver) {
          if (prop === 'headPosition') return () => (down ? Promise.reject(new Error('connection refused')) : target.headPosition());
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    const t = await inProcessApp({}, flaky);
    try {
      expect((await call(t, 'GET', '/health/ready')).status).toBe(200);
      down = true;
      const r = await call(t, 'GET', '/health/ready');
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ status: 'error', store: 'down', error: { store: { status: 'down' } } });
      expect((await call(t, 'GET', '/health/live')).status).toBe(200);
      down = false;
      expect((await call(t, 'GET', '/health/ready')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
