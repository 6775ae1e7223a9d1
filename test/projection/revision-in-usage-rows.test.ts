/**
 * A Space's revision in the balance read model is the revision of its last event applied, on both
 * stores, through every kind of page: usage alone (SQLite writes the revision into the usage rows
 * it writes, not into rm_space_revisions), a threshold crossed, a subscription change that moves
 * usage between periods (rows deleted), and a rebuild. The entitlement view, which reads the
 * Space's stream on from that revision, counts each use once. On SQLite the revision row is seen
 * to stay behind while usage rows carry the revision, and a file whose rm_usage has no revision
 * column (an earlier version's) gains it, its Spaces' revisions as before.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { spaceStreamName } from '@metering/domain';
import type { EventStore } from '@metering/event-store';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';
import type { BreakdownReadModel } from '../../apps/metering/src/projection/breakdown/breakdown';
import { EntitlementView } from '../../apps/metering/src/projection/entitlement-view';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { clockedIngest, describeOnBothStores, quietProjectorLog } from '../support/read-model-stores';
import { generationPerformed, subscriptionChanged } from '../support/workload/events';

jest.setTimeout(60_000);
const SPACE = 'revision-rows-1';
const OTHER = 'revision-rows-2';
const at = (iso: string) => Date.parse(iso);

const use = (eventId: string, spaceId: string, occurredAt: string, generations = 1) =>
  generationPerformed({ eventId, spaceId, userId: 'ann', occurredAt }, { feature: 'ai_backgrounds', medium: 'image', generations });

/** The stream's last revision. */
const lastRevision = async (store: EventStore, spaceId: string) => {
  const stream = await store.readStream(spaceStreamName(spaceId));
  return stream[stream.length - 1].revision;
};

/** rm_space_revisions' row of the Space (SQLite only), or null. */
const revisionRow = (balances: BalanceReadModel, spaceId: string): number | null => {
  if (!(balances instanceof SqliteBalanceReadModel)) return null;
  const r = balances.db.prepare('SELECT revision FROM rm_space_revisions WHERE space_id = ?').get(spaceId) as { revision: number } | undefined;
  return r ? r.revision : null;
};

async function scenario(store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, pageSize: number) {
  await balances.init();
  await breakdown.init();
  const { send } = await clockedIngest(store);
  const projector = new Projector(store, balances, quietProjectorLog, 10, pageSize, [breakdown]);
  const expectExact = async (spaceId: string) => {
    expect((await balances.getSpace(spaceId))?.revision).toBe(await lastRevision(store, spaceId));
  };

  // Pro monthly from Mar 1 (its image credits are what the thresholds are of); the other Space too.
  await send('2025-03-01T00:00:00Z', [
    subscriptionChanged({ eventId: 'sub-1', spaceId: SPACE, plan: 'pro', cycle: 'monthly', effectiveAt: '2025-03-01T00:00:00Z' }),
    subscriptionChanged({ eventId: 'sub-2', spaceId: OTHER, plan: 'pro', cycle: 'monthly', effectiveAt: '2025-03-01T00:00:00Z' }),
  ]);
  await projector.catchUp();
  await expectExact(SPACE);
  const afterSubscription = revisionRow(balances, SPACE);

  // Usage alone, in several pages: the revision follows every event.
  for (let i = 0; i < 3; i++) {
    await send(`2025-03-0${2 + i}T00:00:00Z`, [use(`u-${i}`, SPACE, `2025-03-0${2 + i}T00:00:00Z`), use(`o-${i}`, OTHER, `2025-03-0${2 + i}T00:00:00Z`)]);
    await projector.catchUp();
    await expectExact(SPACE);
    await expectExact(OTHER);
  }
  // SQLite: usage pages left the revision row as the subscription wrote it; the usage row carries the revision.
  if (balances instanceof SqliteBalanceReadModel) {
    expect(revisionRow(balances, SPACE)).toBe(afterSubscription);
    const usageRevision = balances.db.prepare('SELECT max(revision) AS r FROM rm_usage WHERE space_id = ?').get(SPACE) as { r: number };
    expect(usageRevision.r).toBe(await lastRevision(store, SPACE));
  }

  // The entitlement view reads on from the read model's revision: each use counted once.
  const view = new EntitlementView(store, balances, { maxSpaces: 8, pollMs: 60_000, batchSize: 7, now: () => at('2025-03-05T00:00:00Z') });
  await view.start();
  try {
    const fromView = (await view.source(SPACE, at('2025-03-05T00:00:00Z'))).usedIn(at('2025-03-01T00:00:00Z'));
    expect(fromView).toEqual((await balances.usage(SPACE))[0].used);
  } finally {
    await view.stop();
  }

  // A big use crosses thresholds (ThresholdCrossed events after it): still exact.
  await send('2025-03-06T00:00:00Z', [use('big', SPACE, '2025-03-06T00:00:00Z', 400)]);
  expect((await store.readStream(spaceStreamName(SPACE))).map((e) => e.type)).toContain('ThresholdCrossed');
  await projector.catchUp();
  await expectExact(SPACE);

  // A change back-dated into March moves the usage between periods (rows deleted and written).
  await send('2025-03-10T00:00:00Z', [subscriptionChanged({ eventId: 'sub-1b', spaceId: SPACE, plan: 'max', cycle: 'monthly', effectiveAt: '2025-03-04T00:00:00Z' })]);
  await send('2025-03-11T00:00:00Z', [use('after', SPACE, '2025-03-11T00:00:00Z')]);
  await projector.catchUp();
  await expectExact(SPACE);
  await expectExact(OTHER);

  // Rebuilt from the store: the same rows, the same revisions.
  const live = await balances.dump();
  await balances.clear();
  await breakdown.clear();
  await new Projector(store, balances, quietProjectorLog, 10, 1000, [breakdown]).catchUp();
  expect(await balances.dump()).toEqual(live);
  await expectExact(SPACE);
}

describeOnBothStores('a Space\'s revision through usage, thresholds, a change and a rebuild', 'revision_rows', scenario);

test('SQLite: a read model file whose rm_usage has no revision column gains it; its Spaces keep their revisions', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-revision-rows-migrate-'));
  try {
    const file = path.join(dir, 'rm.db');
    const old = new Database(file);
    old.exec(`
      CREATE TABLE rm_checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL);
      CREATE TABLE rm_spaces (space_id TEXT PRIMARY KEY, timeline TEXT NOT NULL, last_reset_at INTEGER, next_reset_at INTEGER);
      CREATE TABLE rm_space_revisions (space_id TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE rm_usage (space_id TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER,
        ai_image_credits INTEGER NOT NULL, ai_video_credits INTEGER NOT NULL, batch_exports INTEGER NOT NULL,
        usage_events INTEGER NOT NULL, PRIMARY KEY (space_id, period_start)) WITHOUT ROWID;
      INSERT INTO rm_spaces VALUES ('s1', '[]', NULL, NULL);
      INSERT INTO rm_space_revisions VALUES ('s1', 7);
      INSERT INTO rm_usage VALUES ('s1', 0, NULL, 3, 0, 0, 3);
    `);
    old.close();
    const db = new Database(file);
    try {
      const balances = new SqliteBalanceReadModel(db);
      await balances.init();
      expect((db.prepare("SELECT count(*) AS n FROM pragma_table_info('rm_usage') WHERE name = 'revision'").get() as { n: number }).n).toBe(1);
      expect(await balances.getSpace('s1')).toMatchObject({ spaceId: 's1', revision: 7 });
      expect(await balances.usage('s1')).toEqual([{ spaceId: 's1', periodStart: 0, periodEnd: null, used: { ai_image_credits: 3, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 3 }]);
      // Opened again: nothing left to migrate.
      await new SqliteBalanceReadModel(db).init();
      expect(await balances.getSpace('s1')).toMatchObject({ revision: 7 });
    } finally {
      db.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
