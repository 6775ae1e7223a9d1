/**
 * PositionStore.advancePosition moves a position forward only, on both read models: the relay's
 * late write after a lease handover (or a second scheduler's) cannot move a position back.
 * Positions are compared as integers (SQLite keeps them as text: "9" must not beat "10").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advance-position-'));
const schema = freshSchemaName('rmpos');
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await dropSchema(schema);
});

const models: Array<[string, () => Promise<BalanceReadModel>]> = [
  ['SQLite', async () => {
    const m = new SqliteBalanceReadModel(new Database(path.join(dir, 'rm.db')), true);
    await m.init();
    return m;
  }],
  ['PostgreSQL', async () => {
    const m = new PostgresBalanceReadModel({ url: PG_URL, schema });
    await m.init();
    return m;
  }],
];

describe.each(models)('%s read model', (_name, open) => {
  test('advancePosition: forward only, compared as integers; setPosition still sets (store identity resets)', async () => {
    const m = await open();
    try {
      await m.advancePosition('relay:test', 9n); // no row yet: inserted
      expect(await m.getPosition('relay:test')).toBe(9n);
      await m.advancePosition('relay:test', 10n); // "10" < "9" as text
      expect(await m.getPosition('relay:test')).toBe(10n);
      await m.advancePosition('relay:test', 9n); // a late write of an older page
      expect(await m.getPosition('relay:test')).toBe(10n);
      await m.advancePosition('relay:test', 12_345_678_901_234n);
      expect(await m.getPosition('relay:test')).toBe(12_345_678_901_234n);
      await m.setPosition('relay:test', 0n);
      expect(await m.getPosition('relay:test')).toBe(0n);
      expect(await m.getPosition('other')).toBe(0n);
    } finally {
      await m.close();
    }
  });
});
