/**
 * Upgrading a store written before the bounded Space state (commit 0f579ff, checked in as a
 * fixture by a script run against that commit): its SubscriptionChanged events carry no usage
 * moves and its read model kept one row per use (rm_usage_items). The new code opens it as it is:
 * the read model migration drops the per-use rows and keeps the balances, a rebuild gives the same
 * balances (old changes get their moves by folding their Space once), the audit finds no
 * difference, and ingest goes on (snapshots are built lazily, old ids are still duplicates).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spaceStreamName } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { auditSpace } from '../../apps/metering/src/admin/audit';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { SqliteBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/sqlite-breakdown-read-model';
import { rebuildBalances } from '../../apps/metering/src/projection/rebuild';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { expectBreakdownAddsUpToBalances } from '../support/breakdown-sums';

const FIXTURE = path.join(__dirname, 'fixtures', 'store-0f579ff.db');
const expected = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'balances-0f579ff.json'), 'utf8'));
const balances = (d: { spaces: unknown[]; usage: unknown[]; thresholds: unknown[] }) => JSON.parse(JSON.stringify({ spaces: d.spaces, usage: d.usage, thresholds: d.thresholds }));

it('a store written by the previous version keeps its balances, rebuilds to them, audits clean and ingests on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-upgrade-'));
  const file = path.join(dir, 'metering.db');
  fs.copyFileSync(FIXTURE, file);
  const store = new SqliteEventStore(file);
  try {
    const before = store.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'rm_usage_items'").get() as { n: number };
    expect(before.n).toBe(1);
    const rm = new SqliteBalanceReadModel(store.db);
    await rm.init();
    // migrated: the per-use rows are gone, the balances are the previous version's, row for row
    expect((store.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'rm_usage_items'").get() as { n: number }).n).toBe(0);
    // ... and laid out as this version writes it: the revision in its own narrow table, rm_usage WITHOUT ROWID
    expect(store.db.prepare("SELECT count(*) AS n FROM pragma_table_info('rm_spaces') WHERE name = 'revision'").get()).toEqual({ n: 0 });
    expect(store.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'rm_usage'").pluck().get()).toMatch(/WITHOUT ROWID/);
    await rm.init(); // a second open finds nothing to migrate
    const want = balances(expected);
    expect(want.usage.length).toBeGreaterThan(30);
    expect(balances(await rm.dump())).toEqual(want);

    // the documented upgrade command (`metering rebuild balances`) gives the same rows
    const spaceEvents = (await store.readAll({ streamPrefix: 'space-' })).length;
    expect(await rebuildBalances(store, rm)).toBe(spaceEvents);
    expect(balances(await rm.dump())).toEqual(want);

    // the usage breakdown built from these events adds up, per Space and period, to the balances:
    // the old changes get their member moves with their moves, by the same fold
    const breakdown = new SqliteBreakdownReadModel(store.db);
    await breakdown.init();
    await rebuildBalances(store, rm, { followers: [breakdown] });
    expect(expectBreakdownAddsUpToBalances((await breakdown.dump()).rows, want.usage)).toBeGreaterThan(30);

    // the domain fold of every stream agrees with the read model
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const now = Date.parse(expected.now);
    const spaceIds = [...new Set(want.spaces.map((s: { spaceId: string }) => s.spaceId))] as string[];
    for (const id of spaceIds) {
      const report = await auditSpace(store, rm, catalog.catalog, id, { now });
      expect(report.differences).toEqual([]);
    }

    // ingest goes on: a new use counts, an old one is a duplicate, snapshots appear lazily
    const ingest = new IngestService(store, new SpaceRepository(store, { snapshotEvery: 10 }), catalog, { now: () => now }, systemIds);
    const id = spaceIds[0];
    expect(await store.readSnapshot(spaceStreamName(id))).toBeNull();
    // the Space's earliest recorded generation, sent again months later (beyond the window)
    const first = (await store.readStream(spaceStreamName(id))).find((e) => e.type === 'GenerationRecorded')!;
    const d = first.data as { sourceEventId: string; userId: string; feature: string; generations: number; occurredAt: string };
    expect(now - Date.parse(d.occurredAt)).toBeGreaterThan(35 * 86_400_000);
    const [fresh, old] = await ingest.ingest([
      { type: 'generation-performed', eventId: 'after-upgrade-1', spaceId: id, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 1, occurredAt: expected.now },
      { type: 'generation-performed', eventId: d.sourceEventId, spaceId: id, userId: d.userId, feature: d.feature, medium: 'image', generations: d.generations, occurredAt: d.occurredAt },
    ]);
    expect(fresh.outcome).toBe('accepted');
    // at any age, a redelivery of an accepted event is a duplicate, not "too late"
    expect(old.outcome).toBe('duplicate');
    const snap = await store.readSnapshot(spaceStreamName(id));
    expect(snap).not.toBeNull();
    expect(snap!.revision).toBeGreaterThan(10);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
