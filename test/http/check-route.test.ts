/**
 * POST /v1/spaces/:spaceId/entitlements/check answers exactly as every other /v1 route does, though
 * Fastify serves it without Nest's router (http/check-route.ts): the scope guard (401 with
 * WWW-Authenticate, 403 naming the scope), the error shape `{error, errors: [{field, rule,
 * message}]}` for its own validation, the domain's refusals and the platform's errors (malformed
 * JSON, media type, size), a 404 for an empty Space id, and the answer with exactly its documented
 * fields (the response schema must not drop or add one).
 */
import { call, inProcessApp, type TestApp } from '../support/in-process-app';

const READ = 'rd-aaaaaaaaaaaaaaaa-key';
const INGEST = 'in-bbbbbbbbbbbbbbbb-key';
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
const PATH = '/v1/spaces/acme/entitlements/check';
const ANSWER_FIELDS = ['allowed', 'asOf', 'catalogVersion', 'cost', 'limit', 'message', 'periodEnd', 'pool', 'reason', 'remaining', 'spaceId', 'used'];

describe('the entitlement check route, with API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await inProcessApp({ API_KEYS: `read=${READ},ingest=${INGEST}`, MAX_BODY_BYTES: '4096' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('401 without a key or with a wrong one (WWW-Authenticate set), 403 without the read scope', async () => {
    const none = await call(t, 'POST', PATH, { feature: 'virtual_model' });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metering"');
    expect(none.body).toEqual({
      error: 'unauthorized',
      message: 'an API key is required: send the header "Authorization: Bearer <key>" or "x-api-key: <key>" (a key with the "read" scope)',
      requiredScope: 'read',
    });
    const wrong = await call(t, 'POST', PATH, { feature: 'virtual_model' }, bearer('not-a-key-not-a-key'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="metering", error="invalid_token"');
    expect(wrong.body).toEqual({ error: 'unauthorized', message: 'the API key sent is not valid', requiredScope: 'read' });
    const ingest = await call(t, 'POST', PATH, { feature: 'virtual_model' }, { 'x-api-key': INGEST });
    expect(ingest.status).toBe(403);
    expect(ingest.body).toEqual({
      error: 'forbidden',
      message: 'this API key lacks the "read" scope needed for POST /v1/spaces/acme/entitlements/check',
      requiredScope: 'read',
      keyScopes: ['ingest'],
    });
    // The guard runs before the body is looked at: a bad body without a key is a 401, not a 400.
    expect((await call(t, 'POST', PATH, { nope: 1 })).status).toBe(401);
  });

  it('200 with exactly the documented fields, as JSON', async () => {
    const r = await call(t, 'POST', PATH, { feature: 'virtual_model', generations: 2 }, bearer(READ));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Object.keys(r.body).sort()).toEqual(ANSWER_FIELDS);
    expect(r.body).toMatchObject({ spaceId: 'acme', allowed: expect.any(Boolean), cost: expect.any(Number), limit: expect.any(Number), catalogVersion: expect.any(Number) });
    expect(typeof r.body.message).toBe('string');
    expect(r.body.asOf).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const batch = await call(t, 'POST', PATH, { batchImages: 3, platform: 'web' }, bearer(READ));
    expect(batch.status).toBe(200);
    expect(Object.keys(batch.body).sort()).toEqual(ANSWER_FIELDS);
  });

  it('400 naming the field and the rule; 422 for what the rules refuse', async () => {
    const cases: [unknown, number, { field: string; rule: string }][] = [
      [{ feature: 'x'.repeat(65) }, 400, { field: 'feature', rule: 'isString' }],
      [{ feature: 'ai_shadows', generations: 0 }, 400, { field: 'generations', rule: 'isInt' }],
      [{ batchImages: 2 }, 400, { field: 'platform', rule: 'isString' }],
      [{ nope: 1 }, 400, { field: 'body', rule: 'one_of' }],
      [[1, 2], 400, { field: 'body', rule: 'one_of' }],
      [{ feature: 'no_such_feature' }, 422, { field: 'feature', rule: expect.any(String) }],
    ];
    for (const [body, status, error] of cases) {
      const r = await call(t, 'POST', PATH, body, bearer(READ));
      expect([body, r.status]).toEqual([body, status]);
      expect(r.body).toEqual({ error: status === 400 ? 'bad_request' : 'rejected', errors: [{ ...error, message: expect.any(String) }] });
    }
    const longId = await call(t, 'POST', `/v1/spaces/${'a'.repeat(200)}/entitlements/check`, { feature: 'virtual_model' }, bearer(READ));
    expect(longId.status).toBe(400);
    expect(longId.body.errors[0]).toMatchObject({ field: 'spaceId', rule: 'maxLength' });
    const badId = await call(t, 'POST', '/v1/spaces/a%20b/entitlements/check', { feature: 'virtual_model' }, bearer(READ));
    expect(badId.status).toBe(400);
    expect(badId.body.errors[0]).toMatchObject({ field: 'spaceId', rule: 'matches' });
  });

  it("the platform's errors in the same shape: malformed JSON, no body, another media type, too large; 404 for an empty Space id", async () => {
    const malformed = await call(t, 'POST', PATH, '{"feature":', bearer(READ));
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ error: 'bad_request', errors: [{ field: 'body', rule: 'json', message: expect.stringMatching(/^the body is not valid JSON/) }] });
    const text = await fetch(`${t.url}${PATH}`, { method: 'POST', headers: { ...bearer(READ), 'content-type': 'text/plain' }, body: 'feature=x' });
    expect(text.status).toBe(415);
    expect(await text.json()).toMatchObject({ error: 'unsupported_media_type', errors: [{ field: 'content-type', rule: 'application_json' }] });
    const big = await call(t, 'POST', PATH, JSON.stringify({ feature: 'x'.repeat(5000) }), bearer(READ));
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: 'payload_too_large', errors: [{ field: 'body', rule: 'max_body_bytes' }] });
    const noBody = await fetch(`${t.url}${PATH}`, { method: 'POST', headers: bearer(READ) });
    expect(noBody.status).toBe(400);
    expect(await noBody.json()).toMatchObject({ error: 'bad_request', errors: [{ field: 'body', rule: 'one_of' }] });
    const empty = await call(t, 'POST', '/v1/spaces//entitlements/check', { feature: 'virtual_model' }, bearer(READ));
    expect(empty.status).toBe(404);
  });
});
