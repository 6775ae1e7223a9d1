/**
 * The client's generated types are what `npm run client:generate` makes from the current
 * controllers and docs/asyncapi.yaml: a route, DTO or AsyncAPI schema changed without running the
 * command fails here, naming the file.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const COMMITTED = path.join(ROOT, 'packages', 'client', 'src', 'generated');

describe('packages/client/src/generated', () => {
  it('is up to date with the OpenAPI and AsyncAPI documents (npm run client:generate)', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'client-generated-'));
    try {
      const r = spawnSync(process.execPath, ['-r', '@swc-node/register', 'scripts/client-generate.ts', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
      expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
      const fresh = fs.readdirSync(out).sort();
      expect(fresh).toEqual(['asyncapi.ts', 'openapi.ts']);
      expect(fs.readdirSync(COMMITTED).sort()).toEqual(fresh);
      for (const f of fresh) {
        const stale = fs.readFileSync(path.join(COMMITTED, f), 'utf8') !== fs.readFileSync(path.join(out, f), 'utf8');
        expect({ file: `packages/client/src/generated/${f}`, stale, fix: stale ? 'run npm run client:generate and commit' : '' }).toEqual({ file: `packages/client/src/generated/${f}`, stale: false, fix: '' });
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
