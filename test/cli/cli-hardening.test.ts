/**
 * Issue 19: the CLI never prints raw control characters from stored data, and the files the
 * service and the CLI create in DATA_DIR are readable by their owner only.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStorage } from '../../apps/metering/src/infra/storage';
import { escapeForTerminal } from '../../apps/metering/src/cli/terminal';
import { loadConfig } from '../../apps/metering/src/config';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { DeadLetterRecorder } from '../../apps/metering/src/kafka/dead-letters';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-cli-hard-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The BUILT CLI, as `metering` runs it (commander is ESM-only: it cannot load under this jest setup). */
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'apps', 'metering', 'src', 'cli.js');
function cli(dataDir: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, EVENT_STORE: 'sqlite', LOG_LEVEL: 'silent' };
  delete env.KAFKA_BROKERS;
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, out, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, out, err: stderr }),
    ),
  );
}

it('escapeForTerminal makes C0, C1, DEL and bidi characters visible, keeping what the caller allows', () => {
  expect(escapeForTerminal('a\u001b[2Jb\u0000\u009b\u007f\u202e')).toBe('a\\x1b[2Jb\\x00\\x9b\\x7f\\u202e');
  expect(escapeForTerminal('line\n', new Set(['\n']))).toBe('line\n');
  expect(escapeForTerminal('Zoë 😀')).toBe('Zoë 😀');
});

it('the CLI creates a new data directory and database readable by the owner only', async () => {
  const data = path.join(dir, 'by-cli');
  expect((await cli(data, ['dlq', 'list'])).code).toBe(0);
  expect(fs.statSync(data).mode & 0o777).toBe(0o700);
  for (const f of fs.readdirSync(data)) expect({ f, mode: (fs.statSync(path.join(data, f)).mode & 0o777).toString(8) }).toEqual({ f, mode: '600' });
});

it('files in DATA_DIR are created readable by the owner only', async () => {
  const data = path.join(dir, 'fresh');
  const config = loadConfig({ DATA_DIR: data, LOG_LEVEL: 'silent' }, dir);
  const { store, readModel } = await openStorage(config);
  await store.append('probe-1', [{ id: systemIds.random(), type: 'Probe', data: {} }], 'no_stream');
  expect(fs.statSync(data).mode & 0o777).toBe(0o700);
  const files = fs.readdirSync(data);
  expect(files).toContain('metering.db');
  for (const f of files) expect({ f, mode: (fs.statSync(path.join(data, f)).mode & 0o777).toString(8) }).toEqual({ f, mode: '600' });
  await readModel.close();
  await store.close();
  // An existing world-readable database is narrowed on the next start.
  fs.chmodSync(path.join(data, 'metering.db'), 0o644);
  const again = await openStorage(config);
  expect(fs.statSync(path.join(data, 'metering.db')).mode & 0o777).toBe(0o600);
  await again.readModel.close();
  await again.store.close();
});

it('dlq list and dlq show escape control characters from a message key, its bytes and its reason', async () => {
  const data = path.join(dir, 'dlq');
  const config = loadConfig({ DATA_DIR: data, LOG_LEVEL: 'silent' }, dir);
  const { store, readModel } = await openStorage(config);
  const recorder = new DeadLetterRecorder(store, systemIds, Date.now);
  const key = 'evil\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202ekey';
  const letter = recorder.letter('usage.generation-performed.v1', 0, { offset: '7', key, value: Buffer.from('{"x":"\u001b[31m\u0085"}'), headers: { h: '\u001b[1m' }, timestamp: '0' } as never, [
    { field: 'bad\u001b[2J', rule: 'unknown_field', message: 'property bad\u001b[2J should not exist' },
  ]);
  await recorder.record([letter]);
  await readModel.close();
  await store.close();

  const table = await cli(data, ['dlq', 'list']);
  expect(table.code).toBe(0);
  expect(table.out).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202ekey');
  expect(table.out).not.toMatch(CONTROL);
  const json = await cli(data, ['dlq', 'list', '--format', 'json']);
  expect(json.out).not.toMatch(CONTROL);
  expect(JSON.parse(json.out)[0].key).toBe(key);
  const show = await cli(data, ['dlq', 'show', letter.deadLetterId]);
  expect(show.code).toBe(0);
  expect(show.out).not.toMatch(CONTROL);
  expect(JSON.parse(show.out).valueUtf8).toBe('{"x":"\u001b[31m\u0085"}');
});
