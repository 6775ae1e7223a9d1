/**
 * Checkpoints carry the identity of their store: a read model whose checkpoints came from another
 * store is refused at start-up, naming the reset command, and `rebuild balances` (adoptStoreIdentity
 * after the rebuild) resets it. The "other store" here is the same SQLite file seen through sparse
 * positions (a different log as far as positions go), so no server is needed.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteEventStore } from '@metering/event-store';
import { newEvent } from '@metering/event-store/contract/event-store.contract';
import { SqliteBalanceReadModel } from '../../apps/metering/src/projection/sqlite-balance-read-model';
import {
  STORE_IDENTITY,
  StoreIdentityMismatchError,
  adoptStoreIdentity,
  checkStoreIdentity,
} from '../../apps/metering/src/projection/store-identity';
import { SparsePositionsStore } from '../support/sparse-positions-store';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-identity-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const RELAY = 'relay:kafka';

async function open() {
  const store = new SqliteEventStore(path.join(dir, `${randomUUID()}.db`));
  const readModel = new SqliteBalanceReadModel(store.db);
  await readModel.init();
  return { store, readModel };
}

test('adopts a read model without identity whose positions are this store\'s, then refuses another store', async () => {
  const { store, readModel } = await open();
  try {
    const r = await store.append('outbox-1', [newEvent('ThresholdCrossed'), newEvent('ThresholdCrossed')], 'no_stream');
    await readModel.setPosition(RELAY, r.lastGlobalPosition);
    await checkStoreIdentity(store, readModel, [RELAY]);
    expect(await readModel.getPosition(STORE_IDENTITY)).not.toBe(0n);
    await checkStoreIdentity(store, readModel, [RELAY]); // idempotent

    const other = new SparsePositionsStore(store);
    const err = await checkStoreIdentity(other, readModel, [RELAY]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreIdentityMismatchError);
    expect((err as Error).message).toMatch(/do not belong to this event store.*sparse:sqlite:.*`metering rebuild balances`/);

    // The documented reset: after the rebuild, the identity is the new store's and the relay position starts over.
    expect(await adoptStoreIdentity(other, readModel, [RELAY])).toEqual([RELAY]);
    expect(await readModel.getPosition(RELAY)).toBe(0n);
    await checkStoreIdentity(other, readModel, [RELAY]);
  } finally {
    await store.close();
  }
});

test('a read model without identity whose checkpoint is not a position of this store is refused', async () => {
  const { store, readModel } = await open();
  try {
    const r = await store.append('outbox-1', [newEvent('ThresholdCrossed')], 'no_stream');
    await readModel.setPosition(RELAY, r.lastGlobalPosition); // a dense position, saved before identities existed
    const err = await checkStoreIdentity(new SparsePositionsStore(store), readModel, [RELAY]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreIdentityMismatchError);
    expect((err as Error).message).toMatch(/relay:kafka checkpoint 1 is not a position of this store/);
    expect(await readModel.getPosition(STORE_IDENTITY)).toBe(0n); // nothing adopted
  } finally {
    await store.close();
  }
});
