/**
 * The BUILT service as a process: secrets given in the environment (API keys, the DATABASE_URL
 * password) never appear in its logs, whatever it logs (start-up, rejections, auth failures, a
 * store error); the open mode says so at start-up; a non-loopback HOST without keys refuses to start.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { MAIN, ROOT, startApp, tempDir } from '../support/app-process';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';

const INGEST_KEY = `ik-${randomUUID()}`;
const ADMIN_KEY = `ak-${randomUUID()}`;
const DB_PASSWORD = `pw-${randomUUID().slice(0, 18)}`;

/** PG_URL with a password added (the test server trusts local connections, so any password works). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

describe('the built service', () => {
  const schema = freshSchemaName('prodlog');
  afterAll(() => dropSchema(schema));

  it('never logs a secret from its environment', async () => {
    const app = await startApp({
      EVENT_STORE: 'postgres',
      DATABASE_URL: withPassword(PG_URL, DB_PASSWORD),
      PG_SCHEMA: schema,
      API_KEYS: `read+ingest=${INGEST_KEY},admin=${ADMIN_KEY}`,
      LOG_LEVEL: 'trace',
      HOST: '127.0.0.1',
    });
    try {
      const h = (k: string) => ({ authorization: `Bearer ${k}`, 'content-type': 'application/json' });
      // Accepted, rejected (logged with spaceId and eventId), wrong key, wrong scope, admin.
      const body = JSON.stringify([
        { type: 'subscription-changed', eventId: 'sub-1', spaceId: 'logs-a', plan: 'pro', cycle: 'monthly', effectiveAt: '2026-01-01T00:00:00Z' },
        { type: 'generation-performed', eventId: 'bad-1', spaceId: 'logs-a', userId: 'u', feature: 'nope', medium: 'image', generations: 1, occurredAt: '2026-01-02T00:00:00Z' },
      ]);
      expect((await fetch(`${app.url}/v1/events`, { method: 'POST', headers: h(INGEST_KEY), body })).status).toBe(200);
      expect((await fetch(`${app.url}/v1/events`, { method: 'POST', headers: h(`${INGEST_KEY}x`), body })).status).toBe(401);
      expect((await fetch(`${app.url}/v1/events`, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }, body })).status).toBe(403);
      expect((await fetch(`${app.url}/v1/admin/spaces/logs-a/audit`, { headers: h(ADMIN_KEY) })).status).toBe(200);
      expect((await fetch(`${app.url}/metrics`)).status).toBe(200);
      // A store error: drop the schema under the running service, then ask it something.
      await dropSchema(schema);
      await fetch(`${app.url}/v1/spaces/logs-a/events`, { headers: h(INGEST_KEY) });
      await fetch(`${app.url}/health/ready`);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await app.stop();
    }
    const logs = app.logs();
    expect(logs).toContain('"eventId":"bad-1"');
    expect(logs).toMatch(/"spaceId":"logs-a".*"event rejected"|"event rejected".*"spaceId":"logs-a"/);
    expect(logs).toContain('API keys: 2 configured');
    for (const secret of [INGEST_KEY, ADMIN_KEY, DB_PASSWORD, encodeURIComponent(DB_PASSWORD)]) expect(logs).not.toContain(secret);
    // Every line is JSON (pino), except what Node itself prints.
    const lines = logs.split('\n').filter((l) => l.trim().startsWith('{'));
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('open mode (no API_KEYS, loopback) says so at start-up', async () => {
    const app = await startApp({ LOG_LEVEL: 'info' });
    try {
      expect((await fetch(`${app.url}/v1/spaces/x/usage`)).status).toBe(200);
    } finally {
      await app.stop();
    }
    expect(app.logs()).toMatch(/"level":40.*the API is OPEN: API_KEYS is not set/);
  });

  it('refuses to start without API_KEYS on a non-loopback HOST (exit 2, naming the variable)', () => {
    const r = spawnSync(process.execPath, [MAIN], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOST: '0.0.0.0', PORT: '0', DATA_DIR: tempDir('metering-open-'), API_KEYS: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('API_KEYS: required when HOST="0.0.0.0" is not a loopback address');
    const bad = spawnSync(process.execPath, [MAIN], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOST: '0.0.0.0', PORT: '0', DATA_DIR: tempDir('metering-open-'), API_KEYS: 'admin=tooshort', ROLES: 'api,web' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('API_KEYS entry 1 (admin): the key must be at least 16 characters');
    expect(bad.stderr).toContain('ROLES="api,web"');
    expect(bad.stderr).not.toContain('tooshort');
  });
});
