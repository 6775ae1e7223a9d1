/**
 * Checkpoints carry the identity of the store they came from. Positions are opaque tokens of ONE
 * store (KurrentDB's are sparse byte offsets, SQLite's and PostgreSQL's dense counters): a
 * checkpoint saved against PostgreSQL and read back against KurrentDB either points inside a record
 * (InvalidPosition) or past events it would silently skip. The read model keeps a fingerprint of
 * the store's `storeId()` next to its checkpoints (as the position `store-identity`, so no schema
 * change); start-up refuses a mismatch, and `metering rebuild balances` is the documented reset.
 */
import { createHash } from 'node:crypto';
import type { EventStore } from '@metering/event-store';
import type { BalanceReadModel } from './balance-read-model';

export const STORE_IDENTITY = 'store-identity';
export const RESET_COMMAND = 'metering rebuild balances';

/** A non-zero 60-bit fingerprint of a store id (fits every read model's position column). */
export function storeFingerprint(storeId: string): bigint {
  return BigInt(`0x${createHash('sha256').update(storeId).digest('hex').slice(0, 15)}`) | 1n;
}

export class StoreIdentityMismatchError extends Error {
  constructor(detail: string) {
    super(
      `the balance read model's checkpoints do not belong to this event store (${detail}): positions of one store mean nothing in another. ` +
        `Stop every instance and run \`${RESET_COMMAND}\` (it re-projects from this store and resets the relay position), then start again.`,
    );
    this.name = 'StoreIdentityMismatchError';
  }
}

/**
 * Refuses checkpoints of another store. A read model that predates identities (no fingerprint)
 * is adopted when its checkpoints are positions this store handed out (or 0), else refused.
 */
export async function checkStoreIdentity(store: EventStore, readModel: BalanceReadModel, positions: readonly string[]): Promise<void> {
  const id = await store.storeId();
  const mine = storeFingerprint(id);
  const saved = await readModel.getPosition(STORE_IDENTITY);
  if (saved === mine) return;
  if (saved !== 0n) throw new StoreIdentityMismatchError(`saved for another store; this one is ${id}`);
  const checkpoints: [string, bigint][] = [['balance projection', await readModel.checkpoint()]];
  for (const name of positions) checkpoints.push([name, await readModel.getPosition(name)]);
  for (const [name, position] of checkpoints) {
    if (!(await store.hasPosition(position))) {
      throw new StoreIdentityMismatchError(`${name} checkpoint ${position} is not a position of this store, ${id}`);
    }
  }
  await readModel.setPosition(STORE_IDENTITY, mine);
}

/** After a rebuild: records this store's identity; positions saved for another store go back to the start. */
export async function adoptStoreIdentity(store: EventStore, readModel: BalanceReadModel, positions: readonly string[]): Promise<string[]> {
  const mine = storeFingerprint(await store.storeId());
  const saved = await readModel.getPosition(STORE_IDENTITY);
  const reset: string[] = [];
  for (const name of positions) {
    const p = await readModel.getPosition(name);
    if ((saved !== 0n && saved !== mine) || !(await store.hasPosition(p))) {
      await readModel.setPosition(name, 0n);
      reset.push(name);
    }
  }
  await readModel.setPosition(STORE_IDENTITY, mine);
  return reset;
}
