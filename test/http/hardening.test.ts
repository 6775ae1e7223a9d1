/**
 * Issue 19: no input may crash a request, and the edges hold their limits. Each case is a defect
 * the probe found, against the real app (Fastify listening on loopback, a real SQLite file).
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { type TestApp, call, inProcessApp } from '../support/in-process-app';

jest.setTimeout(60_000);

const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
let seq = 0;
const gen = (spaceId: string, over: Record<string, unknown> = {}) => ({
  type: 'generation-performed', eventId: `h-${process.pid}-${seq++}`, spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 1, occurredAt: iso(now), ...over,
});

/** A request with any headers (fetch refuses to set Host). */
function raw(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: any }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('hostile input over HTTP (open mode, loopback)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await inProcessApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each(['toString', 'valueOf', 'hasOwnProperty', 'constructor', '__proto__'])('"type": "%s" is rejected naming type; the valid events of the request are stored', async (type) => {
    const space = `proto-${type.replace(/_/g, 'u')}`;
    const r = await call(t, 'POST', '/v1/events', [gen(space), { ...gen(space), type }, gen(space)]);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 2, rejected: 1 });
    expect(r.body.results[1]).toMatchObject({ outcome: 'rejected', errors: [{ field: 'type', rule: 'isIn' }] });
    expect((await call(t, 'GET', `/v1/spaces/${space}/usage`)).body.pools.ai_image_credits.used).toBeGreaterThan(0);
  });

  it('a "__proto__" or "constructor" key in an event is an unknown field; the others are kept', async () => {
    const space = 'proto-keys';
    const body = `[${JSON.stringify(gen(space))},${JSON.stringify(gen(space)).replace('{', '{"__proto__":{"polluted":1},')},${JSON.stringify(gen(space, { constructor: { prototype: 1 } }))}]`;
    const r = await call(t, 'POST', '/v1/events', body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 1, rejected: 2 });
    expect(r.body.results[1].errors[0]).toMatchObject({ field: '__proto__', rule: 'unknown_field' });
    expect(r.body.results[2].errors[0]).toMatchObject({ field: 'constructor', rule: 'unknown_field' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('deep nesting: 4,000 levels (24 KB) is a 400 naming body and max_json_depth; a few levels inside an event reject only that event', async () => {
    const deep = `{"plan":"enterprise","cycle":"monthly","customLimits":${'{"a":'.repeat(4000)}1${'}'.repeat(4000)}}`;
    const r = await call(t, 'PUT', '/v1/spaces/deep/subscription', deep);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([expect.objectContaining({ field: 'body', rule: 'max_json_depth' })]);
    const arr = await call(t, 'POST', '/v1/events', '['.repeat(200_000) + ']'.repeat(200_000));
    expect(arr.status).toBe(400);
    const mixed = await call(t, 'POST', '/v1/events', [
      gen('deep'),
      { type: 'subscription-changed', eventId: 'deep-sub', spaceId: 'deep', plan: 'enterprise', cycle: 'monthly', effectiveAt: iso(now - 1000), customLimits: { ai_image_credits: { a: { b: 1 } } } },
    ]);
    expect(mixed.status).toBe(200);
    expect(mixed.body).toMatchObject({ accepted: 1, rejected: 1 });
    expect(mixed.body.results[1].errors[0]).toMatchObject({ field: 'customLimits.ai_image_credits', rule: 'max_depth' });
    const sub = await call(t, 'PUT', '/v1/spaces/deep/subscription', { plan: 'enterprise', cycle: 'monthly', customLimits: { ai_image_credits: [[1]], ai_video_credits: 1, batch_exports: 1 } });
    expect(sub.status).toBe(422);
    expect(sub.body.errors[0]).toMatchObject({ field: 'customLimits.ai_image_credits', rule: 'max_depth' });
  });

  it('an eventId that is not a string (an object whose toString is null, an array, a number) is a 422 naming eventId (or its odd key), never a 500', async () => {
    for (const eventId of [{ toString: null }, { valueOf: null, toString: null }, ['a'], 7]) {
      const sub = await call(t, 'PUT', '/v1/spaces/odd-id/subscription', { plan: 'pro', cycle: 'monthly', eventId });
      expect({ eventId, status: sub.status }).toEqual({ eventId, status: 422 });
      expect(sub.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.stringMatching(/^eventId\b/) })]));
      const ev = await call(t, 'POST', '/v1/events', [gen('odd-id'), { ...gen('odd-id'), eventId }]);
      expect(ev.status).toBe(200);
      expect(ev.body).toMatchObject({ accepted: 1, rejected: 1 });
      expect(ev.body.results[1].eventId).toBeUndefined();
      expect(ev.body.results[1].errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.stringMatching(/^eventId\b/) })]));
    }
    expect((await call(t, 'PUT', '/v1/spaces/odd-id/subscription', { plan: 'pro', cycle: 'monthly' })).status).toBe(200);
  });

  it('only application/json bodies: form, text and multipart bodies get 415 naming content-type', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/xml']) {
      const r = await call(t, 'POST', '/v1/events', 'type=generation-performed', { 'content-type': type });
      expect({ type, status: r.status }).toEqual({ type, status: 415 });
      expect(r.body.errors).toEqual([expect.objectContaining({ field: 'content-type', rule: 'application_json' })]);
    }
    expect((await call(t, 'POST', '/v1/events', [gen('json-ok')], { 'content-type': 'application/json; charset=utf-8' })).status).toBe(200);
  });

  it('open mode serves loopback Host values only and refuses cross-origin browser writes', async () => {
    const ok = await raw(t.url, 'GET', '/v1/spaces/acme/usage', { host: 'localhost:3000' });
    expect(ok.status).toBe(200);
    expect((await raw(t.url, 'GET', '/v1/spaces/acme/usage', { host: '[::1]:3000' })).status).toBe(200);
    const rebound = await raw(t.url, 'GET', '/v1/spaces/acme/usage', { host: 'evil.example:3000' });
    expect(rebound.status).toBe(403);
    expect(rebound.body.errors).toEqual([expect.objectContaining({ field: 'host', rule: 'loopback_host' })]);
    const host = new URL(t.url).host;
    const body = JSON.stringify([gen('origin')]);
    const json = { 'content-type': 'application/json' };
    const cross = await raw(t.url, 'POST', '/v1/events', { ...json, host, origin: 'http://evil.example' }, body);
    expect(cross.status).toBe(403);
    expect(cross.body.errors).toEqual([expect.objectContaining({ field: 'origin', rule: 'same_origin' })]);
    expect((await raw(t.url, 'POST', '/v1/events', { ...json, host, origin: 'null' }, body)).status).toBe(403);
    expect((await raw(t.url, 'POST', '/v1/events', { ...json, host, 'sec-fetch-site': 'cross-site' }, body)).status).toBe(403);
    expect((await raw(t.url, 'POST', '/v1/events', { ...json, host, origin: 'http://localhost:1' }, body)).status).toBe(403);
    expect((await raw(t.url, 'POST', '/v1/events', { ...json, host, origin: `http://${host}` }, body)).status).toBe(200);
    expect((await raw(t.url, 'POST', '/v1/events', { ...json, host }, JSON.stringify([gen('origin')]))).status).toBe(200);
  });

  it('query ranges: since beyond 2^63-1 and at beyond year 9999 are 400 naming the field and rule', async () => {
    const since = await call(t, 'GET', '/v1/notifications?since=9223372036854775808');
    expect(since.status).toBe(400);
    expect(since.body.errors).toEqual([expect.objectContaining({ field: 'since', rule: 'range' })]);
    // in range, but not a position the store handed out (positions are opaque store tokens): 400 too
    const unknown = await call(t, 'GET', '/v1/notifications?since=9223372036854775807');
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual([expect.objectContaining({ field: 'since', rule: 'position' })]);
    expect((await call(t, 'GET', '/v1/notifications?since=1&since=2')).status).toBe(400);
    for (const at of ['8640000000000000', '+275760-09-13T00:00:00Z', '99999999999999999999']) {
      const r = await call(t, 'GET', `/v1/admin/spaces/acme/balance?at=${encodeURIComponent(at)}`);
      expect({ at, status: r.status, rule: r.body.errors?.[0]?.rule }).toEqual({ at, status: 400, rule: expect.stringMatching(/^(range|iso_instant)$/) });
    }
    expect((await call(t, 'GET', '/v1/admin/spaces/acme/balance?at=9999-12-31T00:00:00Z')).status).toBe(200);
  });

  it('one spaceId limit everywhere: 101-128 characters can be written and read, 129 is refused in the path and the body alike', async () => {
    const id = 'S'.repeat(128);
    expect((await call(t, 'PUT', `/v1/spaces/${id}/subscription`, { plan: 'pro', cycle: 'monthly' })).status).toBe(200);
    expect((await call(t, 'POST', '/v1/events', [gen(id)])).body.accepted).toBe(1);
    expect((await call(t, 'GET', `/v1/spaces/${id}/usage`)).body).toMatchObject({ spaceId: id, plan: 'pro' });
    expect((await call(t, 'GET', `/v1/spaces/${'x'.repeat(101)}:@/events`)).status).toBe(200);
    const long = 'S'.repeat(129);
    const path = await call(t, 'GET', `/v1/spaces/${long}/usage`);
    expect(path.status).toBe(400);
    expect(path.body.errors).toEqual([expect.objectContaining({ field: 'spaceId', rule: 'maxLength' })]);
    const body = await call(t, 'POST', '/v1/events', [gen(long)]);
    expect(body.body.results[0].errors).toEqual([expect.objectContaining({ field: 'spaceId', rule: 'maxLength' })]);
    expect((await call(t, 'GET', `/v1/spaces/${'S'.repeat(5000)}/usage`)).status).toBe(400);
  });

  it('userId with NUL or control characters, and instants before 2000, are rejected naming field and rule', async () => {
    const r = await call(t, 'POST', '/v1/events', [gen('text', { userId: 'a\u0000b' }), gen('text', { userId: '\u001b[2J' }), gen('text', { occurredAt: '1999-12-31T00:00:00Z' }), gen('text')]);
    expect(r.body).toMatchObject({ accepted: 1, rejected: 3 });
    expect(r.body.results.slice(0, 3).map((x: any) => `${x.errors[0].field}:${x.errors[0].rule}`)).toEqual(['userId:matches', 'userId:matches', 'occurredAt:min_instant']);
    const sub = await call(t, 'PUT', '/v1/spaces/text/subscription', { plan: 'pro', cycle: 'weekly', effectiveAt: '1970-01-01T00:00:00Z' });
    expect(sub.status).toBe(422);
    expect(sub.body.errors[0]).toMatchObject({ field: 'effectiveAt', rule: 'min_instant' });
  });

  it('the entitlement check bounds its fields', async () => {
    for (const body of [{ feature: 'x'.repeat(65) }, { feature: 'a\u0000' }, { feature: 'ai_shadows', generations: 1e300 }, { batchImages: 1e9, platform: 'web' }, { batchImages: 1, platform: ['web'] }]) {
      const r = await call(t, 'POST', '/v1/spaces/acme/entitlements/check', body);
      expect(r.status).toBe(400);
    }
  });
});

describe('with API keys, any Host is served (a load balancer names it)', () => {
  let t: TestApp;
  const key = 'read+ingest=0123456789abcdef0123';
  beforeAll(async () => {
    t = await inProcessApp({ API_KEYS: key });
  });
  afterAll(async () => {
    await t?.close();
  });
  it('Host is not checked', async () => {
    const r = await raw(t.url, 'GET', '/v1/spaces/acme/usage', { host: 'metering.internal', authorization: 'Bearer 0123456789abcdef0123' });
    expect(r.status).toBe(200);
  });
});

describe('timeouts cut slow clients', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await inProcessApp({ HTTP_HEADERS_TIMEOUT_MS: '400', HTTP_REQUEST_TIMEOUT_MS: '800', HTTP_IDLE_TIMEOUT_MS: '1500' });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Opens a socket, runs `drip` on it, resolves with what the server sent and when it closed. */
  function slowClient(drip: (s: net.Socket) => void): Promise<{ ms: number; text: string }> {
    const u = new URL(t.url);
    return new Promise((resolve) => {
      const started = Date.now();
      let text = '';
      const s = net.connect(Number(u.port), u.hostname, () => drip(s));
      s.setEncoding('utf8');
      s.on('data', (c) => (text += c));
      s.on('error', () => undefined);
      s.on('close', () => resolve({ ms: Date.now() - started, text }));
    });
  }

  it('headers that never finish: 408 and closed after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const r = await slowClient((s) => s.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    expect(r.text).toMatch(/^HTTP\/1\.1 408/);
    expect(r.ms).toBeLessThan(5000);
  });

  it('a body that trickles in: cut after HTTP_REQUEST_TIMEOUT_MS', async () => {
    let timer: NodeJS.Timeout | undefined;
    const r = await slowClient((s) => {
      s.write('POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n[');
      timer = setInterval(() => s.writable && s.write(' '), 100);
    });
    clearInterval(timer);
    expect(r.text).toMatch(/^HTTP\/1\.1 408/);
    expect(r.ms).toBeLessThan(5000);
  });

  it('a connection that sends nothing is closed; a normal request is still served', async () => {
    const r = await slowClient(() => undefined);
    expect(r.ms).toBeLessThan(5000);
    expect((await call(t, 'GET', '/health/live')).status).toBe(200);
  });
});
