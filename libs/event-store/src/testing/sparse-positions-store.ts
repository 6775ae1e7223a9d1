/**
 * TEST ONLY (never selected by configuration: only the test hook METERING_TEST_SPARSE_POSITIONS=1
 * of the embedded store, and the tests, use it). A real store (SQLite, or any adapter) whose global positions are mapped to sparse,
 * unevenly gapped values, as KurrentDB's byte offsets are: position p becomes
 * p * 1000 + (p % 7) * 100 + 7 (0 stays 0, "the start"). Nothing is mocked: every call goes to the
 * wrapped store, only positions are transformed both ways.
 *
 * Like KurrentDB, a position the store never handed out is refused when it is given back
 * (`readAll({after})`, `subscribe({after})`): code that adds 1, subtracts, or invents positions
 * fails here instead of on first contact with a real server. `head - checkpoint` is meaningless
 * (it is ~1000x the number of events).
 */
import type {
  AppendRequest,
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  Snapshot,
  StoredEvent,
  SubscribeOptions,
  Subscription,
} from '../port';

export class InvalidPositionError extends Error {
  constructor(position: bigint) {
    super(`invalid position ${position}: not a position this store handed out`);
    this.name = 'InvalidPositionError';
  }
}

export function toSparse(p: bigint): bigint {
  return p === 0n ? 0n : p * 1000n + (p % 7n) * 100n + 7n;
}

/** The dense position behind a sparse one, or null when `x` was never handed out. */
export function fromSparse(x: bigint): bigint | null {
  if (x === 0n) return 0n;
  if (x < 0n) return null;
  const p = x / 1000n;
  return toSparse(p) === x ? p : null;
}

function dense(x: bigint | undefined): bigint | undefined {
  if (x === undefined) return undefined;
  const p = fromSparse(x);
  if (p === null) throw new InvalidPositionError(x);
  return p;
}

const mapEvent = (e: StoredEvent): StoredEvent => ({ ...e, globalPosition: toSparse(e.globalPosition) });
const mapResult = (r: AppendResult): AppendResult => ({ ...r, lastGlobalPosition: toSparse(r.lastGlobalPosition) });

export class SparsePositionsStore implements EventStore {
  readonly appendMany?: (batch: AppendRequest[]) => Promise<AppendResult[]>;
  readonly readEventsById?: (ids: string[]) => Promise<StoredEvent[]>;
  readonly readColdStarts?: EventStore['readColdStarts'];
  readonly readAllJson?: EventStore['readAllJson'];

  constructor(readonly inner: EventStore) {
    const many = inner.appendMany?.bind(inner);
    if (many) this.appendMany = async (batch) => (await many(batch)).map(mapResult);
    const byId = inner.readEventsById?.bind(inner);
    if (byId) this.readEventsById = async (ids) => (await byId(ids)).map(mapEvent);
    const json = inner.readAllJson?.bind(inner);
    if (json)
      this.readAllJson = async (options: ReadAllOptions = {}) =>
        (await json({ ...options, after: dense(options.after) })).map((e) => ({ ...e, globalPosition: toSparse(e.globalPosition) }));
    const cold = inner.readColdStarts?.bind(inner);
    if (cold)
      this.readColdStarts = async (names, maxCount) =>
        new Map([...(await cold(names, maxCount))].map(([n, c]) => [n, { snapshot: c.snapshot, events: c.events.map(mapEvent) }]));
  }

  get maxAppendBytes(): number | null {
    return this.inner.maxAppendBytes;
  }

  async append(streamName: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return mapResult(await this.inner.append(streamName, events, expected));
  }

  async readStream(streamName: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    return (await this.inner.readStream(streamName, options)).map(mapEvent);
  }

  streamRevision(streamName: string): Promise<number> {
    return this.inner.streamRevision(streamName);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    return (await this.inner.readAll({ ...options, after: dense(options.after) })).map(mapEvent);
  }

  async headPosition(): Promise<bigint> {
    return toSparse(await this.inner.headPosition());
  }

  async hasPosition(position: bigint): Promise<boolean> {
    if (typeof position !== 'bigint') return false;
    const p = fromSparse(position);
    return p !== null && this.inner.hasPosition(p);
  }

  /** Positions of this view differ from the wrapped store's: so does its identity. */
  async storeId(): Promise<string> {
    return `sparse:${await this.inner.storeId()}`;
  }

  subscribe(options: SubscribeOptions): Subscription {
    const { handler } = options;
    return this.inner.subscribe({ ...options, after: dense(options.after), handler: (events) => handler(events.map(mapEvent)) });
  }

  readSnapshot(streamName: string): Promise<Snapshot | null> {
    return this.inner.readSnapshot(streamName);
  }

  writeSnapshot(snapshot: Snapshot): Promise<void> {
    return this.inner.writeSnapshot(snapshot);
  }

  deleteSnapshots(): Promise<number> {
    return this.inner.deleteSnapshots();
  }

  notify(): void {
    this.inner.notify?.();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
