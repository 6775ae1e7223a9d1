/**
 * The image's contents run. No Docker engine runs here, so docker/Dockerfile is replayed on the
 * host, instruction by instruction, each stage in a folder of its own that stands for its file
 * system (absolute paths of the stage, e.g. /app and /data, map into it):
 *
 *  - prod-deps: its COPYs from the build context and its RUN lines as written (`npm ci --omit=dev`
 *    from the lock, with a throwaway npm cache so its `npm cache clean` touches nothing else);
 *  - build: not re-run; its output /app/dist is the dist/ the test command has just built with the
 *    same `nest build metering` (docker.test.ts checks the stage runs it);
 *  - runtime: its COPYs (--from the stages above, and from the context), its RUN lines, its ENV,
 *    then its CMD as its USER (uid 1000, through setpriv, no root), in its WORKDIR.
 *
 * Deviations, all forced by a shared machine: PORT is a free port instead of 3000, API_KEYS is given
 * (HOST=0.0.0.0 needs keys, as the compose file and k8s give them), and the Node binary is this
 * repository's Node 24. The service must answer /health/ready, meter an event, pass the image's
 * HEALTHCHECK, and the CLI in the image must answer --help. Anything the Dockerfile forgets to copy
 * fails here.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../support/app-process';
import { type Stage, dockerStages, envPairs } from './dockerfile';

const ROOT = path.resolve(__dirname, '..', '..');
const KEY = 'replay-key-0123456789abcdef';
jest.setTimeout(300_000);

const canSwitchUser = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

/**
 * The replay's npm cache starts as a copy of this machine's (index copied, content hard-linked: the
 * content is addressed by its hash and never rewritten), so `npm ci` need not download what is
 * already here, and the Dockerfile's `npm cache clean --force` empties the copy only.
 */
function seedNpmCache(cache: string): void {
  const host = path.join(os.homedir(), '.npm', '_cacache');
  if (!fs.existsSync(path.join(host, 'content-v2'))) return;
  fs.mkdirSync(path.join(cache, '_cacache'), { recursive: true });
  const copied =
    spawnSync('cp', ['-r', path.join(host, 'index-v5'), path.join(cache, '_cacache', 'index-v5')]).status === 0 &&
    spawnSync('cp', ['-al', path.join(host, 'content-v2'), path.join(cache, '_cacache', 'content-v2')]).status === 0;
  if (!copied) fs.rmSync(path.join(cache, '_cacache'), { recursive: true, force: true }); // another file system: download instead
}

(canSwitchUser ? describe : describe.skip)('docker/Dockerfile replayed on the host', () => {
  const stages = dockerStages(fs.readFileSync(path.join(ROOT, 'docker', 'Dockerfile'), 'utf8'));
  const byName = new Map(stages.map((s) => [s.name ?? '', s]));
  const runtime = stages[stages.length - 1];
  let work: string;
  const roots = new Map<Stage, string>();
  let proc: ChildProcess | null = null;
  let logs = '';
  let url = '';
  let imageEnv: Record<string, string> = {};
  let user: { uid: number; gid: number };
  let workdir = '';

  /** A stage's absolute path inside the folder that stands for its file system. */
  const inStage = (stage: Stage, p: string) => path.join(roots.get(stage)!, p);
  /** Absolute paths of the stage in a shell line, mapped into its folder (tools in /usr, /bin, /etc stay). */
  const mapLine = (stage: Stage, line: string) => line.replace(/(^|[\s=:'"])(\/(?!usr\/|bin\/|etc\/|dev\/|proc\/|tmp\/)[A-Za-z0-9._-]+)/g, (_m, pre, p) => `${pre}${inStage(stage, p)}`);

  const asUser = (args: string[]) => ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', '--', ...args];
  const hostEnv = () => ({
    PATH: `${path.dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: work,
  });

  /** Replays one stage's instructions (except CMD) and returns its WORKDIR and ENV. */
  function replay(stage: Stage): { workdir: string; env: Record<string, string>; user: string | null } {
    const root = fs.mkdtempSync(path.join(work, `${stage.name ?? 'stage'}-`));
    fs.chmodSync(root, 0o755);
    roots.set(stage, root);
    let wd = '/';
    let env: Record<string, string> = {};
    let usr: string | null = null;
    for (const ins of stage.instructions) {
      const here = inStage(stage, wd);
      switch (ins.keyword) {
        case 'WORKDIR':
          wd = path.posix.resolve(wd, ins.args);
          fs.mkdirSync(inStage(stage, wd), { recursive: true });
          break;
        case 'ENV':
          env = { ...env, ...envPairs(ins.args) };
          break;
        case 'USER':
          usr = ins.args;
          break;
        case 'COPY': {
          const parts = ins.args.split(' ');
          const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
          const paths = parts.filter((p) => !p.startsWith('--'));
          const dest = paths.pop()!;
          for (const src of paths) {
            let source: string;
            if (!from) source = path.join(ROOT, src);
            else if (from === 'build' && src === '/app/dist') source = path.join(ROOT, 'dist'); // see the header
            else source = inStage(byName.get(from)!, src);
            expect({ instruction: `line ${ins.line}: COPY ${ins.args}`, exists: fs.existsSync(source) }).toEqual({ instruction: `line ${ins.line}: COPY ${ins.args}`, exists: true });
            const target = dest.endsWith('/') || paths.length > 1 ? path.join(path.posix.resolve(wd, dest), path.basename(src)) : path.posix.resolve(wd, dest);
            fs.mkdirSync(path.dirname(inStage(stage, target)), { recursive: true });
            // A replayed stage's folder is not used after this: moving its tree is copying it, faster.
            if (from && from !== 'build') fs.renameSync(source, inStage(stage, target));
            else fs.cpSync(source, inStage(stage, target), { recursive: true, dereference: false, verbatimSymlinks: true });
          }
          break;
        }
        case 'RUN': {
          const r = spawnSync('bash', ['-c', mapLine(stage, ins.args)], {
            cwd: here,
            encoding: 'utf8',
            // A build step runs with the host's network settings (registry, CA: npm's user config),
            // a cache of its own (its `npm cache clean` touches nothing else), and the stage's ENV.
            env: { ...process.env, ...hostEnv(), HOME: os.homedir(), ...env, npm_config_cache: path.join(work, 'npm-cache'), npm_config_update_notifier: 'false' },
            timeout: 240_000,
          });
          expect({ instruction: `line ${ins.line}: RUN ${ins.args}`, status: r.status, stderr: r.status === 0 ? '' : r.stderr.slice(-3000) }).toEqual({
            instruction: `line ${ins.line}: RUN ${ins.args}`,
            status: 0,
            stderr: '',
          });
          break;
        }
        default:
          break; // EXPOSE, HEALTHCHECK, CMD: read below
      }
    }
    return { workdir: wd, env, user: usr };
  }

  beforeAll(async () => {
    expect(fs.existsSync(path.join(ROOT, 'dist', 'apps', 'metering', 'src', 'main.js'))).toBe(true);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-image-'));
    fs.chmodSync(work, 0o755);
    seedNpmCache(path.join(work, 'npm-cache'));
    const needed = new Set(runtime.instructions.filter((i) => i.keyword === 'COPY').flatMap((i) => /--from=(\S+)/.exec(i.args)?.[1] ?? []));
    for (const s of stages) if (s !== runtime && s.name && needed.has(s.name) && s.name !== 'build') replay(s);
    const r = replay(runtime);
    workdir = r.workdir;
    const [uid, gid] = (r.user ?? '0').split(':').map(Number);
    user = { uid, gid: Number.isNaN(gid) || gid === undefined ? uid : gid };
    imageEnv = Object.fromEntries(Object.entries(r.env).map(([k, v]) => [k, mapLine(runtime, v)]));

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const cmd = JSON.parse(runtime.instructions.filter((i) => i.keyword === 'CMD').pop()!.args) as string[];
    proc = spawn('setpriv', asUser(cmd), {
      cwd: inStage(runtime, workdir),
      env: { ...hostEnv(), ...imageEnv, PORT: String(port), API_KEYS: `read+ingest+admin=${KEY}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (d) => (logs += d));
    proc.stderr!.on('data', (d) => (logs += d));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`the image's CMD exited with ${proc.exitCode}:\n${logs}`);
      const ok = await fetch(`${url}/health/ready`).then((x) => x.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`the image's CMD did not become ready:\n${logs}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }, 300_000);

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((res) => proc!.once('exit', res));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((res) => setTimeout(res, 10_000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('holds production dependencies only, from the lock', () => {
    const app = inStage(runtime, workdir);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
    const installed = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', '.package-lock.json'), 'utf8')).packages as Record<string, { version: string; dev?: boolean }>;
    for (const [k, v] of Object.entries(installed)) expect({ k, version: v.version, dev: v.dev ?? false }).toEqual({ k, version: lock.packages[k].version, dev: false });
    // (typescript is there: npm keeps it as an optional peer of @nestjs/swagger, "devOptional" in the lock.)
    for (const dev of ['jest', '@nestjs/cli', '@swc/core', 'playwright-core', 'openapi-typescript', 'testcontainers']) expect({ dev, there: fs.existsSync(path.join(app, 'node_modules', dev)) }).toEqual({ dev, there: false });
  });

  it("runs as the image's non-root user, with the image's environment", () => {
    expect(user.uid).not.toBe(0);
    const status = fs.readFileSync(`/proc/${proc!.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)![1]).toBe(String(user.uid));
    expect(imageEnv).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0' });
    expect(logs).toMatch(/listening on/);
    // The data directory is the image's DATA_DIR, writable by that user; the code is not.
    expect(fs.existsSync(path.join(imageEnv.DATA_DIR, 'metering.db'))).toBe(true);
    expect(fs.statSync(inStage(runtime, path.posix.join(workdir, 'dist'))).uid).not.toBe(user.uid);
  });

  it('meters an event over the API', async () => {
    const headers = { 'content-type': 'application/json', 'x-api-key': KEY };
    const occurredAt = new Date(Date.now() - 60_000).toISOString();
    const post = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ type: 'generation-performed', eventId: 'image-1', spaceId: 'image', userId: 'ann', feature: 'ai_backgrounds', medium: 'image', generations: 2, occurredAt }),
    });
    expect(post.status).toBe(200);
    expect(((await post.json()) as { accepted: number }).accepted).toBe(1);
    const usage = (await (await fetch(`${url}/v1/spaces/image/usage`, { headers })).json()) as { pools: Record<string, unknown> };
    expect(usage.pools.ai_image_credits).toMatchObject({ used: 4, limit: 25 });
    expect((await fetch(`${url}/v1/spaces/image/usage`)).status).toBe(401);
  });

  it("passes the image's HEALTHCHECK", () => {
    const hc = runtime.instructions.find((i) => i.keyword === 'HEALTHCHECK')!;
    const cmd = JSON.parse(/CMD (\[.*\])$/.exec(hc.args)![1]) as string[];
    const port = new URL(url).port;
    const r = spawnSync('setpriv', asUser(cmd), { cwd: inStage(runtime, workdir), env: { ...hostEnv(), ...imageEnv, PORT: port }, encoding: 'utf8' });
    expect(r.status).toBe(0);
  });

  it('has the ops CLI, which answers --help', () => {
    const out = execFileSync('setpriv', asUser(['node', 'dist/apps/metering/src/cli.js', '--help']), {
      cwd: inStage(runtime, workdir),
      env: { ...hostEnv(), ...imageEnv },
      encoding: 'utf8',
    });
    expect(out).toMatch(/audit/);
    expect(out).toMatch(/dlq/);
  });
});
