/**
 * Invariants 1, 2 and 5 on real SQLite files: two writers (two connections, as two processes would
 * hold) append to the same Spaces at once; optimistic concurrency catches every conflict, decisions
 * are retried, and the totals are exact. Redelivered events change nothing. A projection rebuilt
 * from the streams equals the live one field for field.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type InboundEvent, foldSpace, spaceStreamName, type SpaceEvent } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';

const clock: Clock = { now: () => Date.parse('2026-11-20T12:00:00Z') };
const silent = { error: () => undefined, info: () => undefined };

async function writer(file: string) {
  const store = new SqliteEventStore(file);
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
  return { store, ingest };
}

describe('ingest on SQLite with two concurrent writers', () => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-ingest-'));
    file = path.join(dir, 'metering.db');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps exact totals, catches conflicts, ignores redeliveries, and rebuilds identically', async () => {
    const a = await writer(file);
    const b = await writer(file);
    const spaces = ['s1', 's2', 's3'];
    const subs: InboundEvent[] = spaces.map((spaceId) => ({
      type: 'subscription-changed', eventId: `sub-${spaceId}`, spaceId, plan: 'max', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z',
    }));
    await a.ingest.ingest(subs);
    const usage: InboundEvent[] = [];
    for (let i = 0; i < 300; i++) {
      usage.push({
        type: 'generation-performed', eventId: randomUUID(), spaceId: spaces[i % 3], userId: 'u', feature: 'ai_shadows',
        medium: 'image', generations: 1 + (i % 3), occurredAt: '2026-11-20T10:00:00Z',
      });
    }
    // Both writers get every event (a redelivery to a second consumer), interleaved in small batches.
    const chunks = (xs: InboundEvent[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));
    const results = await Promise.all([
      (async () => { const out = []; for (const c of chunks(usage, 7)) out.push(...(await a.ingest.ingest(c))); return out; })(),
      (async () => { const out = []; for (const c of chunks([...usage].reverse(), 5)) out.push(...(await b.ingest.ingest(c))); return out; })(),
    ]);
    const accepted = results.flat().filter((o) => o.outcome === 'accepted').length;
    const duplicates = results.flat().filter((o) => o.outcome === 'duplicate').length;
    expect(accepted).toBe(300);
    expect(duplicates).toBe(300);

    const expected: Record<string, number> = { s1: 0, s2: 0, s3: 0 };
    usage.forEach((u) => (expected[u.spaceId] += (u as { generations: number }).generations * 1));
    for (const spaceId of spaces) {
      const events = await a.store.readStream(spaceStreamName(spaceId));
      const state = foldSpace(spaceId, events.map((e) => ({ type: e.type, data: e.data }) as unknown as SpaceEvent));
      const total = [...state.periods.values()].reduce((s, p) => s + p.used.ai_image_credits, 0);
      expect(total).toBe(expected[spaceId]);
      // Revisions are dense and ordered: no merge, no gap.
      expect(events.map((e) => e.revision)).toEqual(events.map((_, i) => i));
    }

    // Projection live vs rebuilt.
    const live = new SqliteBalanceReadModel(a.store.db);
    await live.init();
    const projector = new Projector(a.store, live, silent);
    await projector.catchUp();
    const liveDump = await live.dump();
    expect(liveDump.usage.map((u) => [u.spaceId, u.used.ai_image_credits])).toEqual(spaces.map((s) => [s, expected[s]]));
    // 80 % of max's 375 image credits is 300: only s3 (300 credits) reached it, once.
    expect(liveDump.thresholds.map((t) => [t.spaceId, t.pool, t.threshold, t.state])).toEqual([['s3', 'ai_image_credits', 80, 'fired']]);
    await live.clear();
    expect((await live.dump()).usage).toEqual([]);
    await new Projector(a.store, live, silent).catchUp();
    expect(await live.dump()).toEqual(liveDump);
    await a.store.close();
    await b.store.close();
  });
  it('an event another writer already appended is a duplicate, not accepted twice, even from a stale cache', async () => {
    const f = path.join(dir, 'stale.db');
    const a = await writer(f);
    const b = await writer(f);
    const sub: InboundEvent = { type: 'subscription-changed', eventId: 'sub-x', spaceId: 'x', plan: 'pro', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z' };
    expect((await a.ingest.ingest([sub]))[0].outcome).toBe('accepted');
    expect((await b.ingest.ingest([sub]))[0].outcome).toBe('duplicate'); // both writers now hold the Space's state
    const use: InboundEvent = { type: 'generation-performed', eventId: 'g-x', spaceId: 'x', userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: '2026-11-20T10:00:00Z' };
    expect((await b.ingest.ingest([use]))[0].outcome).toBe('accepted');
    // a's cached state does not know g-x: it decides the same events, and the store finds them at the stream's end
    expect((await a.ingest.ingest([use]))[0].outcome).toBe('duplicate');
    expect((await a.store.readStream(spaceStreamName('x'))).filter((e) => e.type === 'GenerationRecorded')).toHaveLength(1);
  });
});
