/**
 * The usage breakdown follows usage moves, on SQLite and PostgreSQL. A back-dated monthly -> weekly
 * change (decided on Feb 5, effective Jan 20) moves the uses of Feb 3 and 4 out of the month that
 * started on Feb 1 into the week that starts on Feb 3: the balances follow the recorded `moves`,
 * and the breakdown's rows (Space, period start, member, feature) follow `memberMoves`, so per
 * period the breakdown still adds up to the balances. Projected with pages of one event (the move
 * in a page of its own: a row left empty is deleted) and of 1,000 (uses and move in one page: their
 * sums merge), and rebuilt: the same rows each time.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type EventStore, PostgresEventStore, SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';
import type { BreakdownReadModel, BreakdownRow } from '../../apps/metering/src/projection/breakdown/breakdown';
import { PostgresBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/postgres-breakdown-read-model';
import { SqliteBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/sqlite-breakdown-read-model';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { expectBreakdownAddsUpToBalances } from '../support/breakdown-sums';
import { batchExported, generationPerformed, subscriptionChanged } from '../support/workload/events';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';

jest.setTimeout(60_000);
const quiet = { error: (obj: unknown) => console.error('projector error', obj), info: () => undefined };
const SPACE = 'space-moves-1';
const at = (iso: string) => Date.parse(iso);

/** Ingests the scenario at its own instants (an injected clock) and returns what to compare. */
async function scenario(store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, pageSize: number) {
  let now = at('2025-01-01T00:00:00Z');
  const clock: Clock = { now: () => now };
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  const projector = new Projector(store, balances, quiet, 10, pageSize, [breakdown]);
  const send = async (when: string, events: Parameters<IngestService['ingest']>[0]) => {
    now = at(when);
    const outcomes = await ingest.ingest(events);
    expect(outcomes.map((o) => o.outcome)).toEqual(events.map(() => 'accepted'));
  };
  await send('2025-01-01T00:00:00Z', [subscriptionChanged({ eventId: 'sub-monthly', spaceId: SPACE, plan: 'pro', cycle: 'monthly', effectiveAt: '2025-01-01T00:00:00Z' })]);
  await send('2025-02-04T12:00:00Z', [
    generationPerformed({ eventId: 'u1', spaceId: SPACE, userId: 'ann', occurredAt: '2025-01-10T00:00:00Z' }, { feature: 'ai_shadows', medium: 'image', generations: 2 }),
    generationPerformed({ eventId: 'u2', spaceId: SPACE, userId: 'bob', occurredAt: '2025-02-03T00:00:00Z' }, { feature: 'ai_shadows', medium: 'image', generations: 1 }),
    batchExported({ eventId: 'u3', spaceId: SPACE, userId: 'ann', occurredAt: '2025-02-04T00:00:00Z' }, { batchId: 'b1', images: 4, platform: 'web' }),
    generationPerformed({ eventId: 'u4', spaceId: SPACE, userId: 'bob', occurredAt: '2025-02-01T06:00:00Z' }, { feature: 'ai_shadows', medium: 'image', generations: 3 }),
  ]);
  await send('2025-02-05T00:00:00Z', [subscriptionChanged({ eventId: 'sub-weekly', spaceId: SPACE, plan: 'pro', cycle: 'weekly', effectiveAt: '2025-01-20T00:00:00Z' })]);
  await projector.catchUp();
  const rows = async (start: string) =>
    (await breakdown.forPeriod(SPACE, at(start))).map((r: BreakdownRow) => ({ userId: r.userId, feature: r.feature, used: r.used, events: r.events })).sort((a, b) => `${a.userId}|${a.feature}`.localeCompare(`${b.userId}|${b.feature}`));
  return {
    jan: await rows('2025-01-01T00:00:00Z'),
    feb1: await rows('2025-02-01T00:00:00Z'),
    weekOfJan27: await rows('2025-01-27T00:00:00Z'),
    weekOfFeb3: await rows('2025-02-03T00:00:00Z'),
    usage: await balances.usage(SPACE),
    dump: (await breakdown.dump()).rows,
  };
}

function expectFollowed(r: Awaited<ReturnType<typeof scenario>>): void {
  const L = (img: number, exp = 0) => ({ ai_image_credits: img, ai_video_credits: 0, batch_exports: exp });
  // January keeps its use; Feb 1 - Feb 3 (the week of Jan 27) keeps bob's use of Feb 1; the uses
  // of Feb 3 and 4 moved to the week of Feb 3; the month of Feb 1 no longer exists.
  expect(r.jan).toEqual([{ userId: 'ann', feature: 'ai_shadows', used: L(2), events: 1 }]);
  expect(r.feb1).toEqual([]);
  expect(r.weekOfJan27).toEqual([{ userId: 'bob', feature: 'ai_shadows', used: L(3), events: 1 }]);
  expect(r.weekOfFeb3).toEqual([
    { userId: 'ann', feature: 'batch_export', used: L(0, 4), events: 1 },
    { userId: 'bob', feature: 'ai_shadows', used: L(1), events: 1 },
  ]);
  // per period, the breakdown adds up to the balances
  expect(expectBreakdownAddsUpToBalances(r.dump.filter((x) => x.spaceId === SPACE), r.usage)).toBe(3);
}

/** The scenario projected live with pages of `pageSize`, checked, then rebuilt from the store: the same rows. */
async function followThenRebuild(store: EventStore, balances: BalanceReadModel, breakdown: BreakdownReadModel, pageSize: number): Promise<void> {
  await balances.init();
  await breakdown.init();
  const live = await scenario(store, balances, breakdown, pageSize);
  expectFollowed(live);
  await balances.clear();
  await breakdown.clear();
  await new Projector(store, balances, quiet, 10, 1000, [breakdown]).catchUp();
  expect((await breakdown.dump()).rows).toEqual(live.dump);
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-breakdown-moves-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each([1, 1000])('the breakdown follows usage moves (projection pages of %i events)', (pageSize) => {
  test('SQLite', async () => {
    const store = new SqliteEventStore(path.join(dir, `metering-${pageSize}.db`));
    const balances = new SqliteBalanceReadModel(store.db);
    const breakdown = new SqliteBreakdownReadModel(store.db);
    try {
      await followThenRebuild(store, balances, breakdown, pageSize);
    } finally {
      await balances.close();
      await store.close();
    }
  });

  test('PostgreSQL (throw-away schema)', async () => {
    const schema = freshSchemaName('bdmoves');
    const store = new PostgresEventStore({ url: PG_URL, schema });
    const balances = new PostgresBalanceReadModel({ pool: store.pool, schema });
    const breakdown = new PostgresBreakdownReadModel(store.pool, schema);
    try {
      await store.migrate();
      await followThenRebuild(store, balances, breakdown, pageSize);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });
});
