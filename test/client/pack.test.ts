/**
 * `npm pack` of packages/client installs into an empty project with plain npm and works there:
 * the tarball holds the built JavaScript and the type declarations (no sources, no NestJS), a plain
 * CommonJS script in that project talks to the built service, and the README's two examples
 * type-check against the installed declarations.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type RunningApp, ROOT, startApp } from '../support/app-process';

const CLIENT = path.join(ROOT, 'packages', 'client');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });

describe('@metering/client from npm pack', () => {
  let work: string;
  let app: RunningApp;
  let consumer: string;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-client-pack-'));
    // Build a private copy of the package (the tree's packages/client/dist is left alone).
    const staging = path.join(work, 'client');
    fs.mkdirSync(staging);
    for (const f of ['package.json', 'README.md']) fs.copyFileSync(path.join(CLIENT, f), path.join(staging, f));
    run(process.execPath, [TSC, '-p', path.join(CLIENT, 'tsconfig.json'), '--outDir', path.join(staging, 'dist')], ROOT);
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], staging))[0];
    const files: string[] = packed.files.map((f: { path: string }) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(['README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/generated/openapi.d.ts', 'dist/generated/asyncapi.js']));
    expect(files.filter((f) => !f.startsWith('dist/') && !['README.md', 'package.json'].includes(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);

    consumer = path.join(work, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'ai-service', version: '1.0.0', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', path.join(work, packed.filename)], consumer);
    app = await startApp({ LOG_LEVEL: 'warn' });
  }, 120_000);

  afterAll(async () => {
    await app?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('installs with only itself (kafkajs is an optional peer; no NestJS)', () => {
    const installed = fs.readdirSync(path.join(consumer, 'node_modules')).filter((d) => !d.startsWith('.'));
    expect(installed).toEqual(['@metering']);
    const pkg = JSON.parse(fs.readFileSync(path.join(consumer, 'node_modules', '@metering', 'client', 'package.json'), 'utf8'));
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependenciesMeta).toEqual({ kafkajs: { optional: true } });
  });

  it('runs a plain script against the service', () => {
    fs.writeFileSync(
      path.join(consumer, 'use.cjs'),
      `const { MeteringClient, MeteringRejectedError, KafkaUsagePublisher, eventIdFor } = require('@metering/client');
(async () => {
  const c = new MeteringClient({ baseUrl: process.argv[2], retries: 1 });
  const sub = await c.changeSubscription('packed', { plan: 'max', cycle: 'monthly', effectiveAt: new Date(Date.now() - 60000) });
  const g = { spaceId: 'packed', userId: 'ann', feature: 'ai_backgrounds', medium: 'image', generations: 3, occurredAt: new Date(), sourceId: 'job-1' };
  const first = await c.recordGeneration(g);
  const again = await c.recordGeneration(g);
  const usage = await c.usage('packed');
  const check = await c.check('packed', { feature: 'virtual_model', generations: 1 });
  let rejected = null;
  try { await c.changeSubscription('packed', { plan: 'ultra', cycle: 'weekly' }); } catch (e) { rejected = e instanceof MeteringRejectedError && [e.field, e.rule]; }
  let kafka = null;
  try { new KafkaUsagePublisher({ brokers: ['127.0.0.1:1'] }); } catch (e) { kafka = e.message; }
  console.log(JSON.stringify({ sub: sub.outcome, first: first.outcome, again: again.outcome, sameId: first.eventId === again.eventId,
    expectedId: first.eventId === eventIdFor('generation-performed', 'packed', 'source', 'job-1'), used: usage.pools.ai_image_credits.used,
    limit: usage.pools.ai_image_credits.limit, allowed: check.allowed, rejected, kafka }));
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const out = JSON.parse(run(process.execPath, ['use.cjs', app.url], consumer));
    expect(out).toEqual({
      sub: 'accepted',
      first: 'accepted',
      again: 'duplicate',
      sameId: true,
      expectedId: true,
      used: 6,
      limit: 375,
      allowed: true,
      rejected: ['cycle', 'plan_cycle_exists'],
      kafka: expect.stringMatching(/need kafkajs .*npm install kafkajs/),
    });
  });

  it("type-checks the README's examples against the installed declarations", () => {
    const readme = fs.readFileSync(path.join(CLIENT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks).toHaveLength(2);
    for (const b of blocks) expect(b.trim().split('\n').length).toBeLessThanOrEqual(10);
    blocks.forEach((b, i) => fs.writeFileSync(path.join(consumer, `example${i + 1}.ts`), b));
    // Wrong use must fail the same check (so a pass means something).
    fs.writeFileSync(path.join(consumer, 'wrong.ts'), `import { MeteringClient } from '@metering/client';\nexport const x: Promise<number> = new MeteringClient({ baseUrl: 'x' }).usage('a');\n`);
    // One compiler run (it is the slow part): the examples must be clean, and wrong.ts must fail.
    let out = '';
    try {
      run(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck',
        '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', 'example1.ts', 'example2.ts', 'wrong.ts'], consumer);
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    const errors = out.split('\n').filter((l) => /error TS/.test(l));
    expect(errors.filter((l) => !l.startsWith('wrong.ts'))).toEqual([]);
    expect(errors.join('\n')).toMatch(/^wrong\.ts.*error TS2322/);
  });
});
