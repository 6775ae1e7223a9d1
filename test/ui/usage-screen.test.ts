/**
 * Issue 15 in a real browser: the built service (SQLite in a temp DATA_DIR) and Debian's Chromium
 * (/usr/bin/chromium) driven by playwright-core. Never a downloaded browser.
 *
 * One service with API keys (the pages then need a signed link or a console session) and one
 * without (open on loopback, as the API is). Checks the numbers in the DOM against the JSON API
 * (one source of truth), the refresh after more usage, over-limit, free ("never resets"), signed
 * links (valid, expired, tampered, another Space's, inside a cross-origin iframe), the ops console
 * listing a seeded dead letter, no console errors, no horizontal scroll at phone width.
 *
 * UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/*.png (otherwise nothing is written to the tree).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { SqliteEventStore } from '@metering/event-store';
import { signUsageLink } from '../../apps/metering/src/ui/signed-links';
import { ROOT, type RunningApp, freePort, startApp, tempDir } from '../support/app-process';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const SECRET = 'ui-test-secret-0123456789-abcdefghijklmnop';
const INGEST_KEY = 'ingest-key-0123456789abcdef';
const READ_KEY = 'read-key-0123456789abcdefgh';
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1';
const PHONE = { width: 390, height: 844 };

const DEAD_LETTER_ID = 'dl-0b6f3c1e-test';
const DEAD_LETTER_REASON = 'feature: known_feature: unknown feature "ai_sparkles" (catalog version 1 lists: ai_backgrounds, ...)';

let keyed: RunningApp;
let open: RunningApp;
let browser: Browser;
let iframeHost: http.Server;
let iframePort: number;
const errors: string[] = [];

const now = Date.now();
const iso = (t: number) => new Date(t).toISOString();
const pro = `pro-${randomUUID().slice(0, 8)}`;
const over = `over-${randomUUID().slice(0, 8)}`;
const free = `free-${randomUUID().slice(0, 8)}`;

async function call(app: RunningApp, method: string, p: string, body?: unknown, key = INGEST_KEY): Promise<{ status: number; body: any }> {
  const r = await fetch(`${app.url}${p}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), authorization: `Bearer ${key}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

const gen = (spaceId: string, userId: string, feature: string, medium: 'image' | 'video', generations: number) => ({
  type: 'generation-performed', eventId: randomUUID(), spaceId, userId, feature, medium, generations, occurredAt: iso(now),
});
const batch = (spaceId: string, userId: string, images: number) => ({
  type: 'batch-exported', eventId: randomUUID(), spaceId, userId, batchId: randomUUID(), images, platform: 'web', occurredAt: iso(now),
});

async function send(app: RunningApp, events: unknown[]): Promise<void> {
  const r = await call(app, 'POST', '/v1/events', events);
  expect(r.status).toBe(200);
  expect(r.body.accepted).toBe(events.length);
}

async function newPage(viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('console', (m) => {
    // Refusals the tests ask for (401/403) are logged by Chromium as failed loads: expected.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[13]/.test(m.text())) errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  return { context, page };
}

const text = async (page: Page, selector: string) => (await page.locator(selector).first().textContent())?.trim();
const pool = (name: string, field: string) => `#live [data-pool="${name}"] [data-field="${field}"]`;
const fmt = (n: number) => n.toLocaleString('en-US');
const pctText = (n: number) => `${n.toLocaleString('en-US', { maximumFractionDigits: 2 })} %`;

async function link(app: RunningApp, spaceId: string): Promise<string> {
  const r = await call(app, 'POST', `/v1/spaces/${spaceId}/usage-links`, {});
  expect(r.status).toBe(201);
  expect(r.body.path).toMatch(new RegExp(`^/ui/spaces/${spaceId}\\?t=`));
  return `${app.url}${r.body.path}`;
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (the test command does it when it runs as root)`);
  // A dead letter recorded in the store before the service starts, as the Kafka ingest records one.
  const dataDir = tempDir('metering-ui-');
  const store = new SqliteEventStore(path.join(dataDir, 'metering.db'));
  await store.append(
    'deadletters-usage.generation-performed.v1-0',
    [
      {
        id: randomUUID(),
        type: 'DeadLetterRecorded',
        data: {
          deadLetterId: DEAD_LETTER_ID, topic: 'usage.generation-performed.v1', partition: 0, offset: '42', key: 'acme',
          value: Buffer.from('{"feature":"ai_sparkles"}').toString('base64'), headers: {}, timestamp: iso(now),
          errors: [{ field: 'feature', rule: 'known_feature', message: 'unknown feature "ai_sparkles"' }], reason: DEAD_LETTER_REASON, recordedAt: iso(now),
        },
      },
    ],
    'no_stream',
  );
  await store.close();
  [keyed, open] = await Promise.all([
    startApp({ API_KEYS: `ingest=${INGEST_KEY},read=${READ_KEY}`, UI_LINK_SECRET: SECRET, LOG_LEVEL: 'warn' }, dataDir),
    startApp({ LOG_LEVEL: 'warn' }),
  ]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  });
  // Another origin that frames a signed link, as the product's app does.
  iframePort = await freePort();
  iframeHost = http.createServer((req, res) => {
    const src = new URL(req.url ?? '/', 'http://x').searchParams.get('src') ?? '';
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>app</title><iframe id="usage" title="usage" width="800" height="600" src="${src.replace(/"/g, '&quot;')}"></iframe>`);
  });
  await new Promise<void>((r) => iframeHost.listen(iframePort, '127.0.0.1', () => r()));

  const sub = (spaceId: string, plan: string) => call(keyed, 'PUT', `/v1/spaces/${spaceId}/subscription`, { plan, cycle: 'monthly', effectiveAt: iso(now - 86_400_000) });
  expect((await sub(pro, 'pro')).status).toBe(200);
  expect((await sub(over, 'pro')).status).toBe(200);
  await send(keyed, [gen(pro, 'ann', 'ai_backgrounds', 'image', 2), gen(pro, 'bob', 'ai_shadows', 'image', 1), batch(pro, 'ann', 40)]);
  await send(keyed, Array.from({ length: 6 }, (_, i) => batch(over, `user-${i % 2}`, 100)));
  await send(keyed, [gen(free, 'cy', 'ai_backgrounds', 'image', 1)]);
});

afterAll(async () => {
  await browser?.close();
  iframeHost?.close();
  for (const app of [keyed, open]) {
    await app?.stop();
    if (app) fs.rmSync(app.dataDir, { recursive: true, force: true });
  }
});

afterEach(() => {
  const seen = errors.splice(0);
  expect(seen).toEqual([]);
});

describe('the usage screen', () => {
  test('shows the numbers of the usage API, the breakdown by member and feature, and updates after more usage', async () => {
    const usage = (await call(keyed, 'GET', `/v1/spaces/${pro}/usage`, undefined, READ_KEY)).body;
    const { context, page } = await newPage();
    await page.goto(await link(keyed, pro));
    expect(await text(page, 'h1')).toBe(`Usage of ${pro}`);
    for (const p of ['ai_image_credits', 'ai_video_credits', 'batch_exports']) {
      expect(await text(page, pool(p, 'used'))).toBe(fmt(usage.pools[p].used));
      expect(await text(page, pool(p, 'limit'))).toBe(fmt(usage.pools[p].limit));
      expect(await text(page, pool(p, 'percent'))).toBe(pctText(usage.pools[p].percent));
    }
    expect(usage.pools.ai_image_credits.used).toBeGreaterThan(0);
    expect(usage.pools.batch_exports.used).toBe(40);
    expect(await text(page, '[data-field="plan"]')).toBe('pro');
    expect(await text(page, '[data-field="cycle"]')).toBe('monthly');
    expect(await text(page, '[data-field="next-reset"]')).toBe(`${usage.nextResetAt.slice(0, 10)} ${usage.nextResetAt.slice(11, 16)} UTC`);
    // Breakdown: the same numbers as the JSON read model.
    const bd = (await call(keyed, 'GET', `/v1/spaces/${pro}/usage/breakdown`, undefined, READ_KEY)).body;
    expect(bd.byMember.map((m: { userId: string }) => m.userId).sort()).toEqual(['ann', 'bob']);
    const ann = bd.byMember.find((m: { userId: string }) => m.userId === 'ann');
    const annRow = page.locator('table', { has: page.locator('caption', { hasText: 'By member' }) }).locator('tbody tr', { hasText: 'ann' });
    expect((await annRow.locator('td').allTextContents()).map((s) => s.trim())).toEqual([fmt(ann.used.ai_image_credits), '0', '40', '2']);
    const features = await page.locator('table', { has: page.locator('caption', { hasText: 'By feature' }) }).locator('tbody th').allTextContents();
    expect(features.sort()).toEqual(['ai_backgrounds', 'ai_shadows', 'batch_export']);
    // The 12-period chart: one accessible SVG per pool and a table of the same numbers.
    expect(await page.locator('.hist svg[role="img"]').count()).toBe(3);
    expect(await page.locator('.hist svg').first().getAttribute('aria-label')).toContain(fmt(usage.pools.ai_image_credits.used));

    // More usage: the page refreshes itself (polling every 5 s).
    await send(keyed, [gen(pro, 'dee', 'virtual_model', 'image', 1), batch(pro, 'dee', 60)]);
    const after = (await call(keyed, 'GET', `/v1/spaces/${pro}/usage`, undefined, READ_KEY)).body;
    expect(after.pools.batch_exports.used).toBe(100);
    await page.locator(pool('batch_exports', 'used'), { hasText: /^100$/ }).waitFor({ timeout: 15_000 });
    expect(await text(page, pool('ai_image_credits', 'used'))).toBe(fmt(after.pools.ai_image_credits.used));
    expect(await text(page, pool('batch_exports', 'percent'))).toBe(pctText(after.pools.batch_exports.percent));
    expect(await page.locator('tbody th', { hasText: 'dee' }).count()).toBe(1);
    expect(await text(page, '[data-status]')).toMatch(/^Updated /);
    if (SHOTS) await page.screenshot({ path: path.join(ROOT, 'docs/screenshots/usage-screen-desktop.png'), fullPage: true });
    await context.close();
  });

  test('over the limit is shown as such, and works at phone width without horizontal scrolling', async () => {
    const { context, page } = await newPage(PHONE);
    await page.goto(await link(keyed, over));
    expect(await text(page, pool('batch_exports', 'used'))).toBe('600');
    expect(await text(page, pool('batch_exports', 'limit'))).toBe('500');
    expect(await text(page, pool('batch_exports', 'percent'))).toBe('120 %');
    expect(await text(page, pool('batch_exports', 'state'))).toBe('Over the limit (120 %)');
    expect(await page.locator('[data-pool="batch_exports"]').getAttribute('class')).toContain('pool-over');
    expect(await page.locator('[data-pool="batch_exports"] .bar-fill').getAttribute('width')).toBe('100');
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    if (SHOTS) await page.screenshot({ path: path.join(ROOT, 'docs/screenshots/usage-screen-phone.png'), fullPage: true });
    await context.close();
  });

  test('free never resets', async () => {
    const { context, page } = await newPage();
    await page.goto(await link(keyed, free));
    expect(await text(page, '[data-field="plan"]')).toBe('free');
    expect(await text(page, '[data-field="next-reset"]')).toBe('never resets');
    expect(Number(await text(page, pool('ai_image_credits', 'used')))).toBeGreaterThan(0);
    await context.close();
  });
});

describe('signed links', () => {
  test('a link works inside another origin\'s iframe, and the app gets no key', async () => {
    const { context, page } = await newPage();
    await page.goto(`http://127.0.0.1:${iframePort}/?src=${encodeURIComponent(await link(keyed, pro))}`);
    const frame = page.frameLocator('#usage');
    await frame.locator('h1').waitFor();
    expect(await frame.locator('h1').textContent()).toBe(`Usage of ${pro}`);
    expect(await frame.locator(pool('batch_exports', 'limit')).textContent()).toBe('500');
    await context.close();
  });

  test('without a link or key the screen is refused; an expired, tampered or other Space\'s link is refused', async () => {
    const { context, page } = await newPage();
    const refused = async (url: string, status: number, message: RegExp) => {
      const r = await page.goto(url);
      expect(r?.status()).toBe(status);
      expect(await text(page, 'main p')).toMatch(message);
      expect(await page.locator('[data-pool]').count()).toBe(0);
    };
    await refused(`${keyed.url}/ui/spaces/${pro}`, 401, /signed link/);
    const expired = signUsageLink(Buffer.from(SECRET), pro, Date.now() - 1000);
    await refused(`${keyed.url}/ui/spaces/${pro}?t=${expired}`, 403, /expired/);
    const good = new URL(await link(keyed, pro)).searchParams.get('t') as string;
    const [payload, sig] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ v: 1, s: pro, e: Date.now() + 365 * 86_400_000 })).toString('base64url');
    await refused(`${keyed.url}/ui/spaces/${pro}?t=${forged}.${sig}`, 403, /not valid/);
    await refused(`${keyed.url}/ui/spaces/${pro}?t=${payload}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`, 403, /not valid/);
    await refused(`${keyed.url}/ui/spaces/${over}?t=${good}`, 403, /another Space/);
    // The live fragment the page polls is guarded the same way.
    expect((await fetch(`${keyed.url}/ui/spaces/${over}/live?t=${good}`)).status).toBe(403);
    expect((await fetch(`${keyed.url}/ui/spaces/${pro}/live?t=${good}`)).status).toBe(200);
    // Links need the ingest or admin scope.
    expect((await call(keyed, 'POST', `/v1/spaces/${pro}/usage-links`, {}, READ_KEY)).status).toBe(403);
    expect((await fetch(`${keyed.url}/v1/spaces/${pro}/usage-links`, { method: 'POST' })).status).toBe(401);
    await context.close();
  });
});

describe('the ops console', () => {
  test('asks for a key, then lists the dead letter with its reason, read-only for a read key', async () => {
    const { context, page } = await newPage();
    const first = await page.goto(`${keyed.url}/ui/`);
    expect(first?.status()).toBe(401);
    await page.getByLabel('API key').fill('not-a-valid-key-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-message', { hasText: 'not valid' }).waitFor();
    await page.getByLabel('API key').fill(READ_KEY);
    await page.getByRole('button', { name: 'Sign in' }).press('Enter');
    await page.locator('h2', { hasText: 'Dead letters' }).waitFor();
    const row = page.locator('tr', { hasText: DEAD_LETTER_ID });
    expect(await row.locator('td.reason').textContent()).toBe(DEAD_LETTER_REASON);
    expect(await row.locator('td').nth(0).textContent()).toBe('usage.generation-performed.v1 / 0 / 42');
    expect(await page.locator('button[data-redrive]').count()).toBe(0);
    if (SHOTS) await page.screenshot({ path: path.join(ROOT, 'docs/screenshots/ops-console.png'), fullPage: true });
    // Spaces over their limits: the over-limit Space crossed 100 % of its batch exports.
    const watch = page.locator('table', { has: page.locator('caption', { hasText: 'nearest or over' }) });
    expect(await watch.locator('tr', { hasText: over }).first().locator('td').nth(1).textContent()).toBe('100 %');
    expect(await page.locator('table', { has: page.locator('caption', { hasText: 'Catalog versions' }) }).locator('tbody tr').count()).toBeGreaterThanOrEqual(1);
    // Find a Space, with the keyboard.
    await page.getByLabel('Space id').fill(pro);
    await page.getByLabel('Space id').press('Enter');
    await page.locator('h1', { hasText: pro }).waitFor();
    expect(await text(page, pool('batch_exports', 'used'))).toBe('100');
    // Re-drive needs admin.
    expect((await page.request.post(`${keyed.url}/ui/dead-letters/${DEAD_LETTER_ID}/redrive`, { data: {} })).status()).toBe(403);
    await context.close();
  });

  test('open on loopback without API_KEYS, as the API is', async () => {
    const { context, page } = await newPage();
    await send(open, [batch('solo', 'ann', 10)]);
    expect((await page.goto(`${open.url}/ui/`))?.status()).toBe(200);
    expect(await page.locator('h1').textContent()).toBe('Metering ops console');
    expect((await page.goto(`${open.url}/ui/spaces/solo`))?.status()).toBe(200);
    expect(await text(page, pool('batch_exports', 'used'))).toBe('10');
    await context.close();
  });
});
