/**
 * Shared pieces of the benchmarks: the machine and versions, a report that prints its figures and
 * rewrites its own section of bench/RESULTS.md, the broker and the spawned service. The inbound
 * events come from the one workload generator (test/support/workload, `flatStream`).
 *
 * Every benchmark measures a figure next to a raw limit taken in the same run on the same machine
 * (these machines are noisy): the ratio is the figure to compare across runs.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { startApp } from '../test/support/app-process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_WAL_AUTOCHECKPOINT_PAGES } from '@metering/event-store';

export const ROOT = path.resolve(__dirname, '..');
export const RESULTS = path.join(ROOT, 'bench', 'RESULTS.md');

export type Scale = 'full' | 'smoke';

export interface Target {
  what: string;
  ok: boolean;
  detail: string;
}

export interface BenchReport {
  /** Section key in RESULTS.md. */
  key: string;
  title: string;
  command: string;
  /** Markdown lines: the table of figures and what limits it. */
  lines: string[];
  targets: Target[];
}

export function scaleFromArgs(argv = process.argv.slice(2)): Scale {
  return argv.includes('--smoke') || process.env.BENCH_SCALE === 'smoke' ? 'smoke' : 'full';
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return 'n/a';
  }
}

export function machine(): string[] {
  const cpus = os.cpus();
  const pkg = (name: string): string => {
    try {
      return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return 'n/a';
    }
  };
  return [
    `- machine: ${cpus.length} cores (${cpus[0]?.model ?? 'unknown'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB memory, ${os.type()} ${os.release()}`,
    `- versions: Node ${process.versions.node}, better-sqlite3 ${pkg('better-sqlite3')} (SQLite ${sqliteVersion()}), pg ${pkg('pg')}, kafkajs ${pkg('kafkajs')}, autocannon ${pkg('autocannon')}, @nestjs/core ${pkg('@nestjs/core')}, ${tryRun('psql', ['--version'])}, ${tryRun('java', ['-version']) === 'n/a' ? 'java n/a' : 'java 17'}`,
    `- load average at the start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  ];
}

function sqliteVersion(): string {
  try {
    const db = new Database(':memory:');
    const v = db.prepare('select sqlite_version()').pluck().get() as string;
    db.close();
    return v;
  } catch {
    return 'n/a';
  }
}

/** Prints the report and rewrites its section of RESULTS.md (other sections are kept). */
export function writeReport(report: BenchReport, scale: Scale): void {
  const body = [
    `## ${report.title}`,
    '',
    `Command: \`${report.command}\` (${new Date().toISOString()})`,
    '',
    ...machine(),
    '',
    ...report.lines,
    '',
    ...(report.targets.length
      ? ['| target | met | measured |', '|---|---|---|', ...report.targets.map((t) => `| ${t.what} | ${t.ok ? 'yes' : '**no**'} | ${t.detail} |`)]
      : []),
  ].join('\n');
  process.stdout.write(`\n${body}\n`);
  if (scale !== 'full') return; // smoke runs (the test command) never touch RESULTS.md
  const begin = `<!-- bench:${report.key} -->`;
  const end = `<!-- /bench:${report.key} -->`;
  let text = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : RESULTS_HEADER;
  const section = `${begin}\n${body}\n${end}`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  text = a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(RESULTS, text);
}

const RESULTS_HEADER = `# Benchmark results

Written by the scripts in bench/ (\`npm run bench\` runs them all; each also runs on its own). Every
figure stands next to a raw limit measured in the same run on the same machine, and the ratio is the
figure to compare: these machines are shared and noisy. Each section names its command, machine,
versions and date. See bench/README.md for what each one does.
`;

/** Runs a benchmark as a script: prints its report, writes RESULTS.md (full scale), exit code. */
export function runAsScript(run: (scale: Scale) => Promise<BenchReport>): void {
  const scale = scaleFromArgs();
  run(scale)
    .then((r) => {
      writeReport(r, scale);
      process.exit(0);
    })
    .catch((err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `metering-bench-${prefix}-`));
}

/**
 * A SQLite file for a raw baseline, set as the store's adapter sets its own: WAL, the given
 * synchronous mode, its page cache (64 MiB unless `cacheKb` says) and its WAL checkpoint interval.
 */
export function rawSqliteFile(file: string, opts: { synchronous?: 'FULL' | 'NORMAL'; cacheKb?: number } = {}): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
  db.pragma(`cache_size = -${opts.cacheKb ?? 65_536}`);
  db.pragma(`wal_autocheckpoint = ${SQLITE_WAL_AUTOCHECKPOINT_PAGES}`);
  return db;
}

/** Bytes this process caused to be written to storage so far (Linux), or null. */
export function writtenBytes(): number | null {
  try {
    const m = /write_bytes: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Peak and current resident set size of a process, from /proc (bytes). */
export function rssOf(pid: number): { peak: number; current: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { peak: kb('VmHWM'), current: kb('VmRSS') };
  } catch {
    return { peak: 0, current: 0 };
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSecondsOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    // after the command: state(0) ... utime(11) stime(12), in clock ticks (100 per second on Linux)
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export interface Service {
  proc: ChildProcess;
  base: string;
  dataDir: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** The node flags of `npm start` (package.json), so benchmarks run the service as it is deployed. */
export function productionNodeArgs(): string[] {
  const start: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start;
  const m = /^node\s+(.*?)\s*dist\/apps\/metering\/src\/main\.js$/.exec(start.trim());
  return m && m[1] ? m[1].split(/\s+/) : [];
}

/**
 * Starts the built service (dist) with the given environment (test/support/app-process.ts) and
 * waits for readiness, with the node flags of `npm start`. BENCH_NODE_ARGS adds node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`;
 * BENCH_SERVICE_MAIN runs another build (a copy of dist/ inside the repo, e.g. `.tmp/ab-base/apps/metering/src/main.js`).
 */
export async function startService(env: Record<string, string>, dataDir = tempDir('svc'), opts: { readyPath?: '/health/ready' | '/health/live' } = {}): Promise<Service> {
  const nodeArgs = [...productionNodeArgs(), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  // BENCH_SERVICE_MAIN: another build's main.js (A/B runs of two builds on the same machine).
  const main = process.env.BENCH_SERVICE_MAIN || undefined;
  const app = await startApp({ LOG_LEVEL: 'warn', ...env }, dataDir, undefined, { nodeArgs, readyTimeoutMs: 300_000, readyPath: opts.readyPath, main });
  return {
    proc: app.proc,
    base: app.url,
    dataDir: app.dataDir,
    output: app.logs,
    stop: async () => {
      await app.stop();
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- inbound events: made by the one workload generator (test/support/workload/flat.ts) -------

import type { InboundType } from '@metering/domain';

/** The stored event each inbound type records. */
export const RECORDED_TYPE: Record<InboundType, string> = {
  'generation-performed': 'GenerationRecorded',
  'batch-exported': 'BatchExportRecorded',
  'subscription-changed': 'SubscriptionChanged',
};

export function benchRunId(): string {
  return randomUUID().slice(0, 8);
}
