/**
 * The BUILT ops CLI (dist/apps/metering/src/cli.js, as `metering` runs it) against a real SQLite
 * data dir populated through IngestService + Projector: audit, balance, catalog, --help.
 * Needs `npx nest build metering` first (scripts/run.sh test builds before jest).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type InboundEvent, defaultCatalogJson } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'apps', 'metering', 'src', 'cli.js');
const DAY = 86_400_000;
const silent = { error: () => undefined, info: () => undefined };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(dataDir: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, EVENT_STORE: 'sqlite', LOG_LEVEL: 'silent' };
    delete env.KAFKA_BROKERS;
    delete env.CATALOG_FILE;
    execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const now = Date.now();
const at = (ms: number) => new Date(ms).toISOString();
const subAt = now - 20 * DAY;
const earlyUse = now - 10 * DAY;
const lateUse = now - 2 * DAY;
let dir: string;

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx nest build metering\` first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-cli-'));
  const store = new SqliteEventStore(path.join(dir, 'metering.db'));
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, { now: () => now }, systemIds);
  const events: InboundEvent[] = [];
  for (const spaceId of ['cli-a', 'cli-b']) {
    // Weekly pro: several periods between subAt and now (limit 30 image credits).
    events.push({ type: 'subscription-changed', eventId: `${spaceId}-sub`, spaceId, plan: 'pro', cycle: 'weekly', effectiveAt: at(subAt) });
    events.push({ type: 'generation-performed', eventId: `${spaceId}-g1`, spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 3, occurredAt: at(earlyUse) });
    // 13 x 2 = 26 of 30 credits: crosses the 80 % threshold.
    events.push({ type: 'generation-performed', eventId: `${spaceId}-g2`, spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 13, occurredAt: at(lateUse) });
    events.push({ type: 'batch-exported', eventId: `${spaceId}-b1`, spaceId, userId: 'u', batchId: 'b1', images: 7, platform: 'web', occurredAt: at(lateUse) });
  }
  const out = await ingest.ingest(events);
  expect(out.filter((o) => o.outcome !== 'accepted')).toEqual([]);
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  await new Projector(store, readModel, silent).catchUp();
  await store.close();
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('--help works for every command', async () => {
  for (const args of [['--help'], ['audit', '--help'], ['balance', '--help'], ['rebuild', 'balances', '--help'], ['catalog', 'show', '--help'], ['catalog', 'publish', '--help'], ['dlq', 'list', '--help'], ['dlq', 'show', '--help'], ['dlq', 'redrive', '--help']]) {
    const r = await cli(dir, args);
    expect({ args, code: r.code }).toEqual({ args, code: 0 });
    expect(r.stdout).toContain('Usage: metering');
  }
  const bad = await cli(dir, ['audit']);
  expect(bad.code).toBe(2);
});

it('audit of consistent Spaces exits 0 and prints their periods; a corrupted row exits 1 and names the difference', async () => {
  const ok = await cli(dir, ['audit', '--space', 'cli-a']);
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain('read model matches the stream');
  expect(ok.stdout).toContain('ai_image_credits@80');
  const json = JSON.parse((await cli(dir, ['audit', '--space', 'cli-a', '--format', 'json'])).stdout);
  expect(json.consistent).toBe(true);
  expect(json.periods.map((p: { used: { ai_image_credits: number } }) => p.used.ai_image_credits)).toEqual([6, 26]);
  expect(json.periods[1].limits.ai_image_credits).toBe(30);
  const csv = await cli(dir, ['audit', '--space', 'cli-a', '--format', 'csv']);
  expect(csv.stdout.split('\n')[0]).toMatch(/^space_id,period_start,/);

  const all = await cli(dir, ['audit', '--all']);
  expect(all.code).toBe(0);
  expect(all.stderr).toMatch(/audit: 2 spaces, 0 inconsistent, 0 differences/);

  // Corrupt one read-model row of cli-b (the read models live in DATA_DIR/read-model.db).
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(path.join(dir, 'read-model.db'));
  const changed = db.prepare("UPDATE rm_usage SET ai_image_credits = ai_image_credits + 1 WHERE space_id = 'cli-b' AND ai_image_credits = 26").run().changes;
  db.close();
  expect(changed).toBe(1);
  const bad = await cli(dir, ['audit', '--space', 'cli-b']);
  expect(bad.code).toBe(1);
  expect(bad.stdout).toMatch(/DIFF cli-b: usage \S+ ai_image_credits: stream says 26, read model says 27/);
  expect((await cli(dir, ['audit', '--space', 'cli-a'])).code).toBe(0);
  const all2 = await cli(dir, ['audit', '--all']);
  expect(all2.code).toBe(1);
  expect(all2.stderr).toMatch(/2 spaces, 1 inconsistent, 1 differences/);

  // A rebuild repairs it.
  const rebuilt = await cli(dir, ['rebuild', 'balances']);
  expect(rebuilt.code).toBe(0);
  expect(rebuilt.stdout).toMatch(/rebuilt balances: 1\d events applied/);
  expect(rebuilt.stderr).toMatch(/events\/s/);
  expect((await cli(dir, ['audit', '--all'])).code).toBe(0);
});

it('balance at an instant before a usage event excludes it', async () => {
  const before = JSON.parse((await cli(dir, ['balance', '--space', 'cli-a', '--at', at(lateUse - 1), '--format', 'json'])).stdout);
  expect(before.plan).toBe('pro');
  expect(before.eventsExcluded).toBeGreaterThan(0);
  const after = JSON.parse((await cli(dir, ['balance', '--space', 'cli-a', '--at', at(lateUse), '--format', 'json'])).stdout);
  expect(after.pools.ai_image_credits.used).toBe(26);
  expect(after.pools.batch_exports.used).toBe(7);
  // lateUse - 1 ms lies in the same weekly period as lateUse or in the previous one: either way the late use is not counted.
  expect(before.pools.ai_image_credits.used).not.toBe(26);
  expect(before.pools.batch_exports.used).toBe(0);
  const table = await cli(dir, ['balance', '--space', 'cli-a', '--at', at(earlyUse)]);
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(/ai_image_credits\s+6\s+30/);
  expect((await cli(dir, ['balance', '--space', 'cli-a', '--at', 'yesterday'])).code).toBe(2);
});

it('catalog show lists versions; publish accepts the next version and refuses an invalid one naming field and rule', async () => {
  const shown = await cli(dir, ['catalog', 'show']);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toMatch(/version 1\s+effective from/);
  expect(shown.stdout).toMatch(/virtual_model\s+image\s+\d+/);

  const v1 = (defaultCatalogJson as { versions: Record<string, unknown>[] }).versions.at(-1) as Record<string, unknown>;
  const next = { ...v1, version: (v1.version as number) + 1, effectiveFrom: at(now + 30 * DAY), notes: 'cli test' };
  const good = path.join(dir, 'next.json');
  fs.writeFileSync(good, JSON.stringify(next));
  const ok = await cli(dir, ['catalog', 'publish', good]);
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain(`published catalog version ${next.version}`);
  expect((await cli(dir, ['catalog', 'show'])).stdout).toContain(`version ${next.version}`);

  const badFile = path.join(dir, 'bad.json');
  fs.writeFileSync(badFile, JSON.stringify({ ...next, version: next.version + 1, effectiveFrom: at(now + 60 * DAY), thresholds: [100, 80] }));
  const bad = await cli(dir, ['catalog', 'publish', badFile]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('thresholds');
  expect(bad.stderr).toContain('ascending_percentages');
  // Not the next number:
  fs.writeFileSync(badFile, JSON.stringify({ ...next, version: next.version + 5, effectiveFrom: at(now + 60 * DAY) }));
  const skipped = await cli(dir, ['catalog', 'publish', badFile]);
  expect(skipped.code).toBe(1);
  expect(skipped.stderr).toMatch(/version: must be \d+ \(the next version\)/);
});

it('dlq list works on a store without dead letters; redrive needs KAFKA_BROKERS', async () => {
  const list = await cli(dir, ['dlq', 'list']);
  expect(list.code).toBe(0);
  expect(list.stdout).toContain('(no dead letters)');
  const redrive = await cli(dir, ['dlq', 'redrive']);
  expect(redrive.code).toBe(2);
  expect(redrive.stderr).toContain('KAFKA_BROKERS');
});
