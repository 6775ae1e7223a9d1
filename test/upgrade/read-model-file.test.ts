/**
 * The read models live in DATA_DIR/read-model.db, not in the store's file (infra/read-model-file.ts).
 * A data directory of an earlier version (the 0f579ff fixture: events and read model in
 * metering.db) is opened as it is: the read model is moved once, rows and positions unchanged,
 * nothing replayed; the store's file keeps its events only; a second start moves nothing; a start
 * interrupted after the copy only drops what was left behind.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig } from '../../apps/metering/src/config';
import { openStorage } from '../../apps/metering/src/infra/storage';
import { openBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/open-breakdown';

const FIXTURE = path.join(__dirname, 'fixtures', 'store-0f579ff.db');
const expected = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'balances-0f579ff.json'), 'utf8'));
const balances = (d: { spaces: unknown[]; usage: unknown[]; thresholds: unknown[] }) => JSON.parse(JSON.stringify({ spaces: d.spaces, usage: d.usage, thresholds: d.thresholds }));
const rmTables = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
  } finally {
    db.close();
  }
};

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function oldDataDir(): { dir: string; config: ReturnType<typeof loadConfig> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-rmfile-'));
  dirs.push(dir);
  fs.copyFileSync(FIXTURE, path.join(dir, 'metering.db'));
  // A relay position kept next to the old read model: it must move with it (else the relay would publish everything again).
  const db = new Database(path.join(dir, 'metering.db'));
  db.prepare("INSERT INTO rm_checkpoints (name, position) VALUES ('pos:relay:kafka', '17')").run();
  db.close();
  return { dir, config: loadConfig({ DATA_DIR: dir, EVENT_STORE: 'sqlite' }) };
}

test('an earlier version\'s read model in metering.db is moved to read-model.db once: same balances and positions, nothing replayed', async () => {
  const { dir, config } = oldDataDir();
  const want = balances(expected);
  expect(rmTables(path.join(dir, 'metering.db'))).toContain('rm_usage_items');

  const first = await openStorage(config);
  try {
    const checkpoint = await first.readModel.checkpoint();
    expect(checkpoint).toBeGreaterThan(0n); // kept: the projector goes on from it, nothing is replayed
    expect(balances(await first.readModel.dump())).toEqual(want);
    expect(await first.readModel.getPosition('relay:kafka')).toBe(17n);
    const breakdown = await openBreakdownReadModel(config, first);
    expect(await breakdown.checkpoint()).toBe(0n); // the fixture predates the breakdown: it catches up by itself
  } finally {
    await first.readModel.close();
    await first.store.close();
  }
  expect(rmTables(path.join(dir, 'metering.db'))).toEqual([]);
  expect(rmTables(path.join(dir, 'read-model.db'))).toEqual([
    'rm_breakdown', 'rm_breakdown_checkpoint', 'rm_breakdown_watch', 'rm_checkpoints', 'rm_space_revisions', 'rm_spaces', 'rm_thresholds', 'rm_usage',
  ]);

  // A start interrupted after the copy left the old tables behind: they are dropped, the moved rows stay.
  const db = new Database(path.join(dir, 'metering.db'));
  db.exec("CREATE TABLE rm_usage (space_id TEXT, period_start INTEGER); INSERT INTO rm_usage VALUES ('stale', 1); CREATE TABLE rm_checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL); INSERT INTO rm_checkpoints VALUES ('balances', '1')");
  db.close();
  const second = await openStorage(config);
  try {
    expect(balances(await second.readModel.dump())).toEqual(want);
    expect(await second.readModel.getPosition('relay:kafka')).toBe(17n);
  } finally {
    await second.readModel.close();
    await second.store.close();
  }
  expect(rmTables(path.join(dir, 'metering.db'))).toEqual([]);
});

test('two starts at once on an earlier version\'s data directory: one moves, the other finds nothing left to move; same balances', async () => {
  const { dir, config } = oldDataDir();
  const both = await Promise.all([openStorage(config), openStorage(config)]);
  try {
    for (const s of both) {
      expect(balances(await s.readModel.dump())).toEqual(balances(expected));
      expect(await s.readModel.getPosition('relay:kafka')).toBe(17n);
    }
  } finally {
    for (const s of both) {
      await s.readModel.close();
      await s.store.close();
    }
  }
  expect(rmTables(path.join(dir, 'metering.db'))).toEqual([]);
});

test('a new data directory: events in metering.db, read models in read-model.db, both owner-only', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-rmfile-'));
  dirs.push(dir);
  const config = loadConfig({ DATA_DIR: dir, EVENT_STORE: 'sqlite' });
  const storage = await openStorage(config);
  try {
    await openBreakdownReadModel(config, storage);
  } finally {
    await storage.readModel.close();
    await storage.store.close();
  }
  expect(rmTables(path.join(dir, 'metering.db'))).toEqual([]);
  expect(rmTables(path.join(dir, 'read-model.db'))).toContain('rm_spaces');
  expect(fs.statSync(path.join(dir, 'read-model.db')).mode & 0o077).toBe(0);
});
