/**
 * rm_breakdown is a WITHOUT ROWID table (one B-tree per row written instead of a rowid table and a
 * key index). A read-model file written by an earlier version holds it as a rowid table: opening it
 * migrates it in place, rows unchanged, and the projection goes on from the same checkpoint to the
 * same rows as a read model that was never migrated.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { SqliteBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/sqlite-breakdown-read-model';
import { WorkloadClock, generateWorkload, runWorkload } from '../support/workload';

jest.setTimeout(60_000);

/** rm_breakdown as versions before this layout created it (a rowid table; its key a separate index). */
const OLD_RM_BREAKDOWN = `
  CREATE TABLE rm_breakdown (
    space_id TEXT NOT NULL, period_start INTEGER NOT NULL, user_id TEXT NOT NULL, feature TEXT NOT NULL,
    ai_image_credits INTEGER NOT NULL, ai_video_credits INTEGER NOT NULL, batch_exports INTEGER NOT NULL, events INTEGER NOT NULL,
    PRIMARY KEY (space_id, period_start, user_id, feature));`;

const tableSql = (db: Database.Database) => db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'rm_breakdown'").pluck().get() as string;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-breakdown-layout-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('an rm_breakdown written as a rowid table is migrated on open, rows and checkpoint unchanged, and projects on to the same rows', async () => {
  const workload = generateWorkload({ seed: 7, spaces: 20, events: 600 });
  const store = new SqliteEventStore(path.join(dir, 'metering.db'));
  const reference = new Database(path.join(dir, 'reference.db'));
  const old = new Database(path.join(dir, 'old.db'));
  try {
    const clock = new WorkloadClock(workload.start);
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const run = await runWorkload(workload, { ingest: new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds), clock });
    expect(run.rejected).toEqual([]);
    const events = await store.readAll({ streamPrefix: 'space-' });
    const half = Math.floor(events.length / 2);
    expect(half).toBeGreaterThan(100);

    // The reference: this version's layout from the start, the first half projected.
    const ref = new SqliteBreakdownReadModel(reference);
    await ref.init();
    expect(tableSql(reference)).toMatch(/WITHOUT ROWID/);
    await ref.apply(events.slice(0, half));
    const afterHalf = await ref.dump();
    expect(afterHalf.rows.length).toBeGreaterThan(20);

    // The earlier layout holding the same rows, checkpoint and watch list.
    old.exec(OLD_RM_BREAKDOWN);
    expect(tableSql(old)).not.toMatch(/WITHOUT ROWID/);
    old.prepare('ATTACH DATABASE ? AS ref').run(path.join(dir, 'reference.db'));
    old.exec(`
      INSERT INTO rm_breakdown SELECT * FROM ref.rm_breakdown;
      CREATE TABLE rm_breakdown_checkpoint (name TEXT PRIMARY KEY, position TEXT NOT NULL);
      INSERT INTO rm_breakdown_checkpoint SELECT * FROM ref.rm_breakdown_checkpoint;
      CREATE TABLE rm_breakdown_watch (
        space_id TEXT NOT NULL, pool TEXT NOT NULL, threshold INTEGER NOT NULL, period_start INTEGER NOT NULL,
        state TEXT NOT NULL, used INTEGER NOT NULL, limit_ INTEGER NOT NULL, position TEXT NOT NULL, recorded_at TEXT NOT NULL,
        PRIMARY KEY (space_id, pool, threshold));
      INSERT INTO rm_breakdown_watch SELECT * FROM ref.rm_breakdown_watch;`);
    old.exec('DETACH DATABASE ref');

    const migrated = new SqliteBreakdownReadModel(old);
    await migrated.init();
    expect(tableSql(old)).toMatch(/WITHOUT ROWID/);
    expect(old.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'rm_breakdown_migrated%'").pluck().get()).toBe(0);
    expect(await migrated.dump()).toEqual(afterHalf);
    expect(await migrated.checkpoint()).toBe(await ref.checkpoint());
    await migrated.init(); // a second open finds nothing to migrate
    expect(await migrated.dump()).toEqual(afterHalf);

    // The rest of the events, from the same checkpoint: the same rows as the never-migrated reference.
    await ref.apply(events);
    await migrated.apply(events);
    const full = await ref.dump();
    expect(full.rows.length).toBeGreaterThan(afterHalf.rows.length);
    expect(await migrated.dump()).toEqual(full);
  } finally {
    old.close();
    reference.close();
    await store.close();
  }
});
