/**
 * Starts the BUILT service (dist/) as a child process on a free port with its own data dir, as a
 * user would run it, and stops it. Used by end-to-end tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'apps', 'metering', 'src', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningApp {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  logs: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startApp(
  env: Record<string, string> = {},
  dataDir = tempDir('metering-e2e-'),
  onSpawn?: (proc: ChildProcess) => void,
  options: {
    nodeArgs?: string[];
    readyTimeoutMs?: number;
    /** Another build of the service (e.g. a private snapshot of dist/). */
    main?: string;
    /** Wait for liveness only (a process catching up under load may answer /health/ready 503 a while). */
    readyPath?: '/health/ready' | '/health/live';
  } = {},
): Promise<RunningApp> {
  const main = options.main ?? MAIN;
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first (the test command does)`);
  const port = await freePort();
  let out = '';
  // The kafka jest project's global setup puts KAFKA_BROKERS into every worker's environment: a
  // service started here is embedded unless the test asks for Kafka itself.
  const inherited: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(inherited)) if (k.startsWith('KAFKA_') || k === 'EVENT_STORE' || k === 'DATABASE_URL') delete inherited[k];
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), main], {
    cwd: ROOT,
    env: { ...inherited, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onSpawn?.(proc);
  // Keep the last 1 MB: a long run (benchmarks, fault runs) must not grow without bound.
  const keep = (d: Buffer) => {
    out += d;
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`service exited with ${proc.exitCode}:\n${out}`);
    try {
      const r = await fetch(`${url}${options.readyPath ?? '/health/ready'}`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`service did not become ready in ${readyTimeoutMs / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dataDir,
    proc,
    logs: () => out,
    stop: (signal: NodeJS.Signals = 'SIGTERM') =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve(proc.exitCode);
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        proc.kill(signal);
      }),
  };
}

export async function api<T = any>(base: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
  const r = await fetch(`${base}${p}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** The types of a Space's stored events, in stream order (GET /v1/spaces/:id/events, up to 1,000). */
export async function eventTypesOf(base: string, spaceId: string): Promise<string[]> {
  return ((await api(base, 'GET', `/v1/spaces/${spaceId}/events?limit=1000`)).body.events as { type: string }[]).map((e) => e.type);
}

export async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 100));
    last = await probe();
  }
  return last;
}
