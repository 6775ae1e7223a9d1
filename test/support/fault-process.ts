/**
 * For long fault runs: a private snapshot of the built service (dist/ copied once, node_modules
 * linked), so that a rebuild of dist/ by someone else during the run cannot hand a restarted process
 * a half-written or different binary. `startSnapshotApp` is `startApp` with the snapshot's main.js.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, type RunningApp, startApp } from './app-process';

export interface ServiceSnapshot {
  main: string;
  cli: string;
  dir: string;
  remove(): void;
}

export function snapshotService(): ServiceSnapshot {
  const src = path.join(ROOT, 'dist');
  if (!fs.existsSync(path.join(src, 'apps', 'metering', 'src', 'main.js'))) throw new Error('dist/apps/metering/src/main.js is missing: run "npx nest build metering" first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-snapshot-'));
  fs.cpSync(src, path.join(dir, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return {
    main: path.join(dir, 'dist', 'apps', 'metering', 'src', 'main.js'),
    cli: path.join(dir, 'dist', 'apps', 'metering', 'src', 'cli.js'),
    dir,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export async function startSnapshotApp(main: string, env: Record<string, string>, dataDir: string, onSpawn?: (proc: ChildProcess) => void): Promise<RunningApp> {
  // Liveness, not readiness: a process catching up under load may answer /health/ready with 503
  // for a while (a slow store probe), and it is consuming all the same.
  return startApp(env, dataDir, onSpawn, { main, readyPath: '/health/live', readyTimeoutMs: 60_000 });
}
