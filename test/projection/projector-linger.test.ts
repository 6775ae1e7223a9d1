/**
 * Projector.lingerMs (PROJECTION_LINGER_MS): after a page of a heavy ingest (at least a tenth of the
 * page size, short of a full page) the projector waits before its next read, so pages grow; light
 * traffic never waits, and a read-your-writes `waitFor` or a `stop` ends the wait at once. Real
 * SQLite files; the linger is a minute here, so "at once" and "waited" cannot be confused.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { InboundEvent } from '@metering/domain';
import { SqliteEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { Projector } from '../../apps/metering/src/projection/projector';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { eventually } from '../support/app-process';

jest.setTimeout(60_000);
const silent = { error: () => undefined, info: () => undefined };
const NOW = Date.parse('2026-06-30T12:00:00Z');
const DAY = 86_400_000;
const LINGER_MS = 60_000;
const PAGE = 100;

let n = 0;
const subscription = (spaceId: string): InboundEvent =>
  ({ type: 'subscription-changed', eventId: `s-${n++}`, spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: new Date(NOW - DAY).toISOString() }) as InboundEvent;
const generations = (count: number): InboundEvent[] =>
  Array.from({ length: count }, (_, i) =>
    ({ type: 'generation-performed', eventId: `g-${n++}`, spaceId: `s${i % 5}`, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 1, occurredAt: new Date(NOW - 1000).toISOString() }) as InboundEvent);

async function setUp(lingerMs: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-linger-'));
  const store = new SqliteEventStore(path.join(dir, 'm.db'), { synchronous: 'NORMAL' });
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, { now: () => NOW }, systemIds);
  await ingest.ingest(Array.from({ length: 5 }, (_, i) => subscription(`s${i}`)));
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  const projector = new Projector(store, readModel, silent, 10, PAGE, [], lingerMs);
  await projector.start();
  const head = () => store.headPosition();
  /** The checkpoint once it reaches `at`, or where it stood after `ms`. */
  const checkpointAt = (at: bigint, ms: number) => eventually(async () => projector.checkpoint, (c) => c >= at, ms);
  const close = async () => {
    await projector.stop();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { ingest, projector, head, checkpointAt, close };
}

test('after a page of a heavy ingest it waits before the next read; a waitFor ends the wait at once', async () => {
  const { ingest, projector, head, checkpointAt, close } = await setUp(LINGER_MS);
  try {
    await ingest.ingest(generations(40)); // a page of 40: a tenth of the page size or more, not full
    const first = await head();
    expect(await checkpointAt(first, 5_000)).toBeGreaterThanOrEqual(first);
    await ingest.ingest(generations(3));
    const second = await head();
    // Lingering: the next page is not read for now.
    expect(await checkpointAt(second, 500)).toBeLessThan(second);
    const started = Date.now();
    expect(await projector.waitFor(second, 10_000)).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  } finally {
    await close();
  }
});

test('light traffic (pages under a tenth of the page size) never waits', async () => {
  const { ingest, projector, head, checkpointAt, close } = await setUp(LINGER_MS);
  try {
    for (let i = 0; i < 3; i++) {
      await ingest.ingest(generations(5));
      const at = await head();
      expect(await checkpointAt(at, 5_000)).toBeGreaterThanOrEqual(at);
    }
    expect(projector.shouldLinger(9)).toBe(false);
    expect(projector.shouldLinger(10)).toBe(true);
    expect(projector.shouldLinger(PAGE)).toBe(false); // a full page: more is waiting, read on
  } finally {
    await close();
  }
});

test('stop ends a wait at once; lingerMs 0 never waits', async () => {
  const { ingest, projector, head, checkpointAt, close } = await setUp(LINGER_MS);
  try {
    await ingest.ingest(generations(40));
    const at = await head();
    expect(await checkpointAt(at, 5_000)).toBeGreaterThanOrEqual(at);
    await new Promise((r) => setTimeout(r, 50)); // in its wait now
    const started = Date.now();
    await projector.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
  } finally {
    await close();
  }
  const off = await setUp(0);
  try {
    expect(off.projector.shouldLinger(40)).toBe(false);
    await off.ingest.ingest(generations(40));
    await off.ingest.ingest(generations(3));
    const at = await off.head();
    expect(await off.checkpointAt(at, 5_000)).toBeGreaterThanOrEqual(at);
  } finally {
    await off.close();
  }
  expect(() => new Projector(null as never, null as never, silent, 10, PAGE, [], -1)).toThrow(/lingerMs/);
});
