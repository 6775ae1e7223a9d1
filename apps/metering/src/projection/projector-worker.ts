/**
 * The projector's thread (PROJECTION_THREAD=worker; ProjectorThread starts it). It opens the
 * storage the configuration names with connections of its own (SQLite in WAL mode: the main
 * thread's appends and reads go on beside it), and runs the same Projector, with the breakdown as
 * its follower, as the main thread would. It tells the main thread each checkpoint it reaches, and
 * takes from it: `notify` (events were appended: read now instead of at the next poll), `wait`
 * (someone waits for a position: end a linger) and `stop`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AppConfig } from '../config';
import { openStorage } from '../infra/storage';
import { openBreakdownReadModel } from './breakdown/open-breakdown';
import { PROJECTION_BATCH, Projector } from './projector';

export type ToProjectorThread = { t: 'notify' } | { t: 'wait'; position: string } | { t: 'stop' };

export type FromProjectorThread =
  | { t: 'started'; position: string }
  | { t: 'failed'; message: string; stack?: string }
  | { t: 'at'; position: string; applied: { pages: number; events: number; ms: number } }
  | { t: 'log'; level: 'error' | 'info'; msg: string; obj?: Record<string, unknown>; err?: { message: string; stack?: string } }
  | { t: 'stopped' };

/** An error's message and stack, for the main thread's logger (an Error does not cross threads whole). */
function plainError(err: unknown): { message: string; stack?: string } {
  return err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
}

async function run(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('projector-worker: not started as a worker thread');
  const config = (workerData as { config: AppConfig }).config;
  const post = (m: FromProjectorThread) => port.postMessage(m);
  const logger = {
    error: (obj: unknown, msg?: string) => {
      const err = (obj as { err?: unknown } | null)?.err;
      post({ t: 'log', level: 'error', msg: msg ?? 'projection error', err: err === undefined ? undefined : plainError(err) });
    },
    info: (obj: unknown, msg?: string) => post({ t: 'log', level: 'info', msg: msg ?? '', obj: obj as Record<string, unknown> }),
  };
  /** What the thread holds once it has opened its storage (null until then, or when that failed). */
  let held: { projector: Projector; close(): Promise<void> } | null = null;
  let opening: Promise<void> = Promise.resolve();
  let stopping = false;
  port.on('message', (m: ToProjectorThread) => {
    if (m.t === 'notify') held?.projector.notifyStore();
    // Projector.waitFor wakes the subscription and ends a linger; the main thread keeps the timeout.
    else if (m.t === 'wait') void held?.projector.waitFor(BigInt(m.position), 1);
    else if (m.t === 'stop' && !stopping) {
      stopping = true;
      void opening
        .then(() => held?.close())
        .catch((err) => logger.error({ err }, 'projector thread: closing its storage failed'))
        .then(() => {
          post({ t: 'stopped' });
          port.close();
        });
    }
  });
  let startFailed: unknown = null;
  opening = (async () => {
    const storage = await openStorage(config);
    let breakdown: Awaited<ReturnType<typeof openBreakdownReadModel>>;
    try {
      breakdown = await openBreakdownReadModel(config, storage);
    } catch (err) {
      await storage.readModel.close().catch(() => undefined);
      await storage.store.close().catch(() => undefined);
      throw err;
    }
    const projector = new Projector(storage.store, storage.readModel, logger, config.projectionPollMs, PROJECTION_BATCH, [breakdown], config.projectionLingerMs);
    held = {
      projector,
      close: async () => {
        await projector.stop();
        await breakdown.close();
        await storage.readModel.close();
        await storage.store.close();
      },
    };
  })().catch((err) => {
    startFailed = err;
  });
  await opening;
  if (stopping) return;
  if (!held) {
    post({ t: 'failed', ...plainError(startFailed) });
    port.close();
    return;
  }
  const { projector } = held as { projector: Projector };
  projector.onAdvance = (position) => post({ t: 'at', position: position.toString(), applied: { ...projector.applied } });
  try {
    await projector.start();
  } catch (err) {
    if (stopping) return; // stopped during its catch-up: the stop closes it
    // The first catch-up failed (the Projector restarts only a follow that failed): report it, and close.
    post({ t: 'failed', ...plainError(err) });
    await (held as { close(): Promise<void> }).close().catch(() => undefined);
    port.close();
    return;
  }
  if (!stopping) post({ t: 'started', position: projector.checkpoint.toString() });
}

void run();
