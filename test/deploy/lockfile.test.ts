/**
 * Installs from the lock file: package-lock.json covers every platform npm supports (no optional
 * binary of another platform pruned), matches package.json, and `npm ci` accepts it on a clean copy
 * (package.json and the lock only, no node_modules). scripts/run.sh and docker/Dockerfile install
 * with `npm ci` only. After the quick start, .ci/run checks that `git status` is clean.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { checkLock } = require('../../scripts/lock-check.js') as {
  checkLock(lock: string, pkg?: string): { problems: string[]; platformPackages: number; packages: number };
};

describe('package-lock.json', () => {
  it('locks every dependency for every platform, and agrees with package.json', () => {
    const r = checkLock(path.join(ROOT, 'package-lock.json'), path.join(ROOT, 'package.json'));
    expect(r.problems).toEqual([]);
    // @swc/core alone has a binary package per platform; a lock written from one machine's node_modules has 1.
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
    const swc = Object.keys(lock.packages).filter((k) => /node_modules\/@swc\/core-/.test(k));
    expect(swc.length).toBeGreaterThanOrEqual(8);
  });

  it('the check fails a lock written from one platform', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-pruned-'));
    try {
      const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
      for (const k of Object.keys(lock.packages)) if (/node_modules\/@swc\/core-darwin-arm64$/.test(k)) delete lock.packages[k];
      fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify(lock));
      fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
      expect(checkLock(path.join(dir, 'package-lock.json')).problems).toEqual([expect.stringMatching(/@swc\/core needs @swc\/core-darwin-arm64@.*missing from the lock/)]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('npm ci accepts it on a clean copy', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-ci-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
      // --dry-run: the same validation of the lock against package.json as a real `npm ci`, without the download.
      const out = execFileSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toMatch(/added \d+ packages/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scripts/run.sh and docker/Dockerfile install with npm ci only', () => {
    const installs = (file: string) =>
      fs
        .readFileSync(path.join(ROOT, file), 'utf8')
        .split('\n')
        .filter((l) => !/^\s*#/.test(l))
        .flatMap((l) => [...l.matchAll(/\bnpm (ci|install|i)\b[^|&;]*/g)].map((m) => m[0].trim()));
    for (const file of ['scripts/run.sh', 'docker/Dockerfile']) {
      const found = installs(file);
      expect({ file, some: found.length > 0 }).toEqual({ file, some: true });
      expect({ file, notCi: found.filter((c) => !c.startsWith('npm ci')) }).toEqual({ file, notCi: [] });
    }
  });

  it('.ci/run fails when the quick start leaves git status dirty', () => {
    const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/git status --porcelain/);
  });
});
