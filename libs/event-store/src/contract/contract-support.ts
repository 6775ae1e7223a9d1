/**
 * Types and helpers shared by the parts of the EventStore contract (event-store.contract.ts). Test files only.
 */
import { randomUUID } from 'node:crypto';
import { EventStore, NewEvent } from '../port';

export interface ContractStore {
  store: EventStore;
  cleanup(): Promise<void>;
}

/** What a test may ask of the factory (each adapter passes it to its constructor). */
export interface ContractStoreOptions {
  /** The adapter's append byte budget (`maxAppendBytes`). */
  maxAppendBytes?: number;
}

export interface ContractOptions {
  /**
   * Whether an id already used in ANOTHER stream is rejected (DuplicateEventIdError). True for
   * SQLite and PostgreSQL (global unique index); KurrentDB keeps no global id index.
   */
  uniqueIdsAcrossStreams?: boolean;
  /** Whether the adapter offers the optional `appendMany` (default true); if not, its tests are skipped. */
  appendMany?: boolean;
  /** Whether the adapter offers the optional `readEventsById` (default true); if not, its test is skipped. */
  readEventsById?: boolean;
  /** When set, every test is registered as skipped (reported SKIPPED, never passed). */
  skip?: boolean;
  /**
   * Whether appends requested together (same turn of the event loop) are group-committed and
   * applied in call order (default true: SQLite, PostgreSQL). The tests whose outcome depends on
   * that order (two appends to one stream in one group, positions in call order) run only then;
   * the order-independent ones run on every adapter.
   */
  groupCommit?: boolean;
}

let prefixCounter = 0;
/** A stream-name prefix no other test uses. */
export function uniquePrefix(): string {
  return `ct${Date.now().toString(36)}${(prefixCounter++).toString(36)}${randomUUID().slice(0, 6)}-`;
}

export function newEvent(type = 'Tested', data: Record<string, unknown> = {}, metadata?: Record<string, unknown>): NewEvent {
  return { id: randomUUID(), type, data, ...(metadata ? { metadata } : {}) };
}

export function events(n: number, type = 'Tested'): NewEvent[] {
  return Array.from({ length: n }, (_, i) => newEvent(type, { i }));
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, it resolved');
}

export function expectStrictlyIncreasing(positions: bigint[]): void {
  for (let i = 1; i < positions.length; i++) {
    if (!(positions[i] > positions[i - 1])) {
      throw new Error(`global positions not strictly increasing at ${i}: ${positions[i - 1]} then ${positions[i]}`);
    }
  }
}

/** What the entry hands each feature part: the running test's store and prefix, the factory, the options. */
export interface ContractContext {
  /** The store and stream prefix of the running test (set by the entry's beforeEach). */
  current(): { store: EventStore; p: string };
  factory: (storeOptions?: ContractStoreOptions) => Promise<ContractStore>;
  uniqueIdsAcrossStreams: boolean;
  offersAppendMany: boolean;
  offersReadById: boolean;
  groupCommit: boolean;
}
