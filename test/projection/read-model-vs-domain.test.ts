/**
 * The balance read model agrees with the domain fold of each stream, field for field, when
 * subscriptions arrive after the usage they govern (different topics), and a rebuild equals the
 * live read model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type InboundEvent, type SpaceEvent, foldSpace, spaceStreamName } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { prng } from '../support/workload';

const silent = { error: () => undefined, info: () => undefined };
const NOW = Date.parse('2026-06-30T00:00:00Z');

it('read model = domain fold, with subscriptions arriving late, and rebuild = live', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-rm-'));
  const store = new SqliteEventStore(path.join(dir, 'm.db'));
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  // A window wider than the six months of history: every use may still move when a subscription arrives late.
  const ingest = new IngestService(store, new SpaceRepository(store, { correctionWindowMs: 400 * 86_400_000 }), catalog, { now: () => NOW }, systemIds);
  const rand = prng(42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const day = 86_400_000;
  const start = Date.parse('2026-01-01T00:00:00Z');
  const events: InboundEvent[] = [];
  for (let s = 0; s < 20; s++) {
    const spaceId = `sp${s}`;
    for (let k = 0; k < 3; k++)
      events.push({
        type: 'subscription-changed', eventId: `${spaceId}-sub-${k}`, spaceId, plan: pick(['pro', 'max', 'free'] as const),
        cycle: pick(['weekly', 'monthly', 'yearly'] as const), effectiveAt: new Date(start + Math.floor(rand() * 170) * day).toISOString(),
      });
    for (let k = 0; k < 40; k++) {
      const occurredAt = new Date(start + Math.floor(rand() * 180 * day)).toISOString();
      events.push(
        rand() < 0.5
          ? { type: 'generation-performed', eventId: `${spaceId}-g-${k}`, spaceId, userId: 'u', feature: pick(['ai_backgrounds', 'ai_video', 'templates']), medium: 'image', generations: 1 + Math.floor(rand() * 3), occurredAt }
          : { type: 'batch-exported', eventId: `${spaceId}-b-${k}`, spaceId, userId: 'u', batchId: `b${k}`, images: 1 + Math.floor(rand() * 100), platform: 'web', occurredAt },
      );
    }
  }
  // ai_video is a video feature: fix the medium so every event is valid.
  for (const e of events) if (e.type === 'generation-performed' && e.feature === 'ai_video') e.medium = 'video';
  // Shuffle: subscriptions land anywhere, often after the usage they govern.
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [events[i], events[j]] = [events[j], events[i]];
  }
  for (let i = 0; i < events.length; i += 25) {
    const out = await ingest.ingest(events.slice(i, i + 25));
    expect(out.filter((o) => o.outcome !== 'accepted')).toEqual([]);
  }

  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  await new Projector(store, readModel, silent).catchUp();
  const live = await readModel.dump();
  for (let s = 0; s < 20; s++) {
    const spaceId = `sp${s}`;
    const state = foldSpace(spaceId, (await store.readStream(spaceStreamName(spaceId))).map((e) => ({ type: e.type, data: e.data }) as unknown as SpaceEvent));
    const fromDomain = [...state.periods.values()]
      .filter((p) => p.usageEvents > 0)
      .sort((a, b) => a.start - b.start)
      .map((p) => ({ spaceId, periodStart: p.start, periodEnd: p.end, used: p.used, usageEvents: p.usageEvents }));
    expect(live.usage.filter((u) => u.spaceId === spaceId)).toEqual(fromDomain);
    expect(live.spaces.find((x) => x.spaceId === spaceId)?.timeline).toEqual(state.timeline);
  }
  await readModel.clear();
  await new Projector(store, readModel, silent).catchUp();
  expect(await readModel.dump()).toEqual(live);
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a subscription change decided ahead wakes the scheduler when it takes effect, once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-rm-'));
  const store = new SqliteEventStore(path.join(dir, 'm.db'));
  let now = Date.parse('2025-03-05T00:00:00Z');
  const clock = { now: () => now };
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  const project = () => new Projector(store, readModel, silent).catchUp();
  const sub = (eventId: string, plan: 'pro' | 'max', effectiveAt: string): InboundEvent => ({
    type: 'subscription-changed', eventId, spaceId: 'fut', plan, cycle: 'weekly', effectiveAt,
  });
  await ingest.ingest([sub('pro', 'pro', '2025-03-03T00:00:00Z'), sub('max', 'max', '2025-03-06T00:00:00Z')]);
  await project();
  // Next reset of pro weekly is Mar 10; the upgrade takes effect on Mar 6: the scheduler wakes then.
  expect((await readModel.getSpace('fut'))?.nextResetAt).toBe(Date.parse('2025-03-06T00:00:00Z'));
  expect(await readModel.dueForReset(now, 10)).toEqual([]);
  now = Date.parse('2025-03-06T00:00:01Z');
  expect(await readModel.dueForReset(now, 10)).toEqual(['fut']);
  const [outcome] = await ingest.executeForSpace('fut', [{ type: 'ResetDuePeriods', spaceId: 'fut' }]);
  expect(outcome).toMatchObject({ outcome: 'accepted', recorded: ['SubscriptionActivated'] });
  await project();
  expect((await readModel.getSpace('fut'))?.nextResetAt).toBe(Date.parse('2025-03-10T00:00:00Z'));
  expect(await readModel.dueForReset(now, 10)).toEqual([]);
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
