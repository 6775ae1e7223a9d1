/**
 * PROJECTION_THREAD=worker: the projector in a worker thread of its own (ProjectorThread), on real
 * SQLite files opened by the thread itself. What the rest of the service relies on: it catches up
 * before `start` resolves, a local append wakes it (no wait for its poll), `waitFor` resolves when
 * the thread reports the position, a thread that dies is started again from the read model's
 * checkpoint (nothing applied twice, nothing lost), a thread that cannot open its storage fails
 * `start` with the reason, and `stop` ends the thread and its connections.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { InboundEvent } from '@metering/domain';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type AppConfig, loadConfig } from '../../apps/metering/src/config';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { type Storage, openStorage } from '../../apps/metering/src/infra/storage';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { ProjectorThread } from '../../apps/metering/src/projection/projector-thread';
import { eventually } from '../support/app-process';

jest.setTimeout(90_000);
const NOW = Date.parse('2026-06-30T12:00:00Z');
const DAY = 86_400_000;

let n = 0;
const subscription = (spaceId: string): InboundEvent =>
  ({ type: 'subscription-changed', eventId: `s-${n++}`, spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: new Date(NOW - DAY).toISOString() }) as InboundEvent;
const generations = (spaceId: string, count: number): InboundEvent[] =>
  Array.from({ length: count }, () =>
    ({ type: 'generation-performed', eventId: `g-${n++}`, spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 1, occurredAt: new Date(NOW - 1000).toISOString() }) as InboundEvent);

interface Logged {
  errors: string[];
  logger: { error(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
}
function logged(): Logged {
  const errors: string[] = [];
  return { errors, logger: { error: (obj, msg) => errors.push(`${msg} ${String((obj as { err?: Error })?.err?.message ?? '')}`), info: () => undefined } };
}

async function setUp(env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-projector-thread-'));
  // A poll of a minute: only a wake-up from this thread's appends (or a waitFor) makes it read soon.
  const config: AppConfig = loadConfig({ DATA_DIR: dir, SQLITE_SYNCHRONOUS: 'normal', PROJECTION_THREAD: 'worker', PROJECTION_POLL_MS: '60000', ...env }, dir);
  const storage: Storage = await openStorage(config);
  const catalog = new CatalogService(storage.store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(storage.store, new SpaceRepository(storage.store), catalog, { now: () => NOW }, systemIds);
  const log = logged();
  const thread = new ProjectorThread(config, storage.store, log.logger);
  const close = async () => {
    await thread.stop();
    await storage.readModel.close();
    await storage.store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { config, storage, ingest, thread, log, close };
}

/** The thread's Worker (private): the test ends it as a crash would. */
const workerOf = (thread: ProjectorThread): Worker => (thread as unknown as { worker: Worker }).worker;

test('catches up before start resolves, follows local appends at once, and answers waitFor', async () => {
  const t = await setUp();
  try {
    await t.ingest.ingest([subscription('a'), ...generations('a', 3)]);
    const before = await t.storage.store.headPosition();
    await t.thread.start();
    expect(t.thread.checkpoint).toBe(before);
    expect(await t.storage.readModel.checkpoint()).toBe(before);
    expect((await t.storage.readModel.usage('a'))[0].usageEvents).toBe(3);

    // Appended on this thread: the store's notify reaches the worker, well before its 60 s poll.
    await t.ingest.ingest(generations('a', 2));
    const head = await t.storage.store.headPosition();
    const seen = await eventually(async () => t.thread.checkpoint, (c) => c >= head, 10_000);
    expect(seen).toBe(head);
    expect((await t.storage.readModel.usage('a'))[0].usageEvents).toBe(5);
    expect(t.thread.applied.events).toBeGreaterThanOrEqual(2);

    // waitFor: true at once for a position applied, true once a later one is, false on a timeout.
    expect(await t.thread.waitFor(head, 1)).toBe(true);
    await t.ingest.ingest(generations('a', 1));
    const next = await t.storage.store.headPosition();
    expect(await t.thread.waitFor(next, 10_000)).toBe(true);
    expect(await t.thread.waitFor(next + 1_000n, 200)).toBe(false);
    expect(t.log.errors).toEqual([]);
  } finally {
    await t.close();
  }
});

test('a thread that dies is started again from the checkpoint: every event applied once', async () => {
  const t = await setUp();
  try {
    await t.ingest.ingest([subscription('b'), ...generations('b', 4)]);
    await t.thread.start();
    const first = workerOf(t.thread);
    await first.terminate();
    // Appended while no thread runs: the new thread catches up on them from the read model's checkpoint.
    await t.ingest.ingest(generations('b', 3));
    const head = await t.storage.store.headPosition();
    expect(await t.thread.waitFor(head, 20_000)).toBe(true);
    expect(workerOf(t.thread)).not.toBe(first);
    expect((await t.storage.readModel.usage('b'))[0].usageEvents).toBe(7);
    expect(t.log.errors).toEqual([expect.stringMatching(/^projector thread ended; starting it again from its checkpoint in 1 s projector thread exited \(code 1\)/)]);
  } finally {
    await t.close();
  }
});

test('a thread that cannot open its storage fails start with the reason; stop ends a running thread', async () => {
  const t = await setUp();
  try {
    // Its read models' file replaced by a directory: the thread cannot open it.
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-projector-thread-bad-'));
    fs.mkdirSync(path.join(bad, 'read-model.db'));
    const broken = new ProjectorThread({ ...t.config, dataDir: bad, sqliteFile: path.join(bad, 'metering.db') }, t.storage.store, logged().logger);
    await expect(broken.start()).rejects.toThrow(/^projector thread failed to start: balance read model: cannot open SQLite file .*read-model\.db \(DATA_DIR\)/);
    await broken.stop();
    fs.rmSync(bad, { recursive: true, force: true });

    await t.thread.start();
    const worker = workerOf(t.thread);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    await t.thread.stop();
    expect(await exited).toBe(0);
    expect(t.log.errors).toEqual([]);
  } finally {
    await t.close();
  }
});
