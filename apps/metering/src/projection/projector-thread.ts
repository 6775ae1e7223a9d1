/**
 * PROJECTION_THREAD=worker: the projector runs in a worker thread of its own (projector-worker.ts),
 * so its pages (thousands of events, written synchronously into the read models' SQLite file)
 * no longer hold the event loop that answers requests, consumes Kafka and group-commits appends;
 * on a 2-core machine they run on the other core. This is the main thread's handle: the same
 * ProjectionControl as the Projector (checkpoint, waitFor, start, stop, applied).
 *
 * - The thread opens the configured storage itself (its own SQLite connections: WAL lets the
 *   main thread's appends and reads go on), so it reads back from the store what the main thread
 *   appended. The main store's `onNotify` tells it of each local append, so it reads at once
 *   instead of at its next poll (PROJECTION_POLL_MS); appends of other processes, and every append on
 *   a store without `onNotify` (PostgreSQL, KurrentDB), are polled.
 * - The checkpoint the main thread sees is the last one the thread reported (after each page's
 *   commit): `waitFor` resolves once a report reaches the position.
 * - A thread that ends by itself (a crash, an error while opening) is logged and started again
 *   after 1 s from the read model's checkpoint, as the Projector restarts after a failed page.
 *   `stop` asks the thread to stop its projector and close its connections, and waits for it.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EventStore } from '@metering/event-store';
import type { AppConfig } from '../config';
import type { ProjectionControl, ProjectorLogger } from './projector';
import type { FromProjectorThread, ToProjectorThread } from './projector-worker';

/** How long `stop` waits for the thread to close its connections before it is terminated. */
const STOP_TIMEOUT_MS = 15_000;
const RESTART_DELAY_MS = 1000;

/** The worker's file: compiled JavaScript in the build, TypeScript (through @swc-node/register) in tests and benchmarks. */
function workerScript(): { file: string; execArgv?: string[] } {
  if (__filename.endsWith('.ts')) return { file: path.join(__dirname, 'projector-worker.ts'), execArgv: ['-r', '@swc-node/register'] };
  return { file: path.join(__dirname, 'projector-worker.js') };
}

export class ProjectorThread implements ProjectionControl {
  private worker: Worker | null = null;
  private position = 0n;
  private waiters: { position: bigint; resolve: () => void }[] = [];
  private stopping = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private unlisten: (() => void) | null = null;
  /** Settles the running `start` (its thread reported started, or failed). */
  private started: { resolve: () => void; reject: (err: Error) => void } | null = null;
  /** Resolves when the running thread has exited. */
  private exited: Promise<void> = Promise.resolve();
  readonly applied = { pages: 0, events: 0, ms: 0 };

  constructor(
    private readonly config: AppConfig,
    private readonly store: EventStore,
    private readonly logger: ProjectorLogger,
  ) {}

  get checkpoint(): bigint {
    return this.position;
  }

  /** Starts the thread; resolves once it has caught up with the store (as Projector.start). */
  async start(): Promise<void> {
    this.stopping = false;
    this.unlisten ??= this.store.onNotify?.(() => this.send({ t: 'notify' })) ?? null;
    await new Promise<void>((resolve, reject) => {
      this.started = { resolve, reject };
      this.spawn();
    });
  }

  private spawn(): void {
    const { file, execArgv } = workerScript();
    const worker = new Worker(file, { workerData: { config: this.config }, ...(execArgv ? { execArgv } : {}) });
    this.worker = worker;
    let failure: Error | null = null;
    worker.on('message', (m: FromProjectorThread) => {
      if (m.t === 'at' || m.t === 'started') {
        this.advance(BigInt(m.position));
        if (m.t === 'at') Object.assign(this.applied, m.applied);
        else {
          this.started?.resolve();
          this.started = null;
        }
      } else if (m.t === 'failed') {
        failure = Object.assign(new Error(`projector thread failed to start: ${m.message}`), { stack: m.stack });
      } else if (m.t === 'log') {
        if (m.level === 'error') this.logger.error({ err: m.err ? Object.assign(new Error(m.err.message), { stack: m.err.stack }) : undefined }, m.msg);
        else this.logger.info?.(m.obj ?? {}, m.msg);
      }
    });
    worker.on('error', (err) => {
      failure = err;
    });
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        resolve();
        if (this.stopping) return;
        const err = failure ?? new Error(`projector thread exited (code ${code})`);
        if (this.started) {
          // The first start fails as Projector.start would; later ones are retried.
          this.started.reject(err);
          this.started = null;
          return;
        }
        this.logger.error({ err }, 'projector thread ended; starting it again from its checkpoint in 1 s');
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          if (!this.stopping) this.spawn();
        }, RESTART_DELAY_MS);
      });
    });
  }

  private send(m: ToProjectorThread): void {
    this.worker?.postMessage(m);
  }

  private advance(to: bigint): void {
    if (to > this.position) this.position = to;
    const ready = this.waiters.filter((w) => w.position <= this.position);
    this.waiters = this.waiters.filter((w) => w.position > this.position);
    for (const w of ready) w.resolve();
  }

  waitFor(position: bigint, timeoutMs = 5000): Promise<boolean> {
    if (position <= this.position) return Promise.resolve(true);
    this.send({ t: 'wait', position: position.toString() });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = { position, resolve: () => (clearTimeout(timer), resolve(true)) };
      this.waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.unlisten?.();
    this.unlisten = null;
    this.started?.reject(new Error('projector thread stopped before it caught up'));
    this.started = null;
    const worker = this.worker;
    if (!worker) return;
    const stopped = new Promise<void>((resolve) => worker.on('message', (m: FromProjectorThread) => m.t === 'stopped' && resolve()));
    worker.postMessage({ t: 'stop' } satisfies ToProjectorThread);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all([stopped, this.exited]).then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.error({}, `projector thread did not stop within ${STOP_TIMEOUT_MS} ms; terminated`);
      await worker.terminate();
    }
    this.worker = null;
  }
}
