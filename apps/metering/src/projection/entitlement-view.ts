/**
 * The entitlement view (issue 14 part 4): what the entitlement check needs per Space (its read-model
 * row: timeline, last reset, revision; and the usage rows of its running and later periods), kept in
 * memory and fresh by tailing the store's global feed.
 *
 *  - **Same rules.** Events are applied with the read model's own fold (`applyEvent` in
 *    apply-events.ts) through a `RowAccess` over the entry; the answer is the domain's
 *    `checkEntitlement` over a `UsageSource`. Nothing here knows a product rule.
 *  - **Bounded.** At most `maxSpaces` entries; past that, the least recently used tenth is evicted
 *    in one sweep. Feed events of
 *    Spaces not in the view are skipped. An entry keeps usage rows only from its `fromPeriod` (the
 *    running period when it was loaded, moved on as periods end): older periods are never asked.
 *  - **Miss.** The Space's read-model row and usage rows are read in ONE consistent read, then the
 *    Space's stream after the row's revision is folded on top (the read model may be behind or ahead
 *    of the tail: it does not matter). Feed events that arrive while the load runs are buffered and
 *    applied after it. Every apply is idempotent by stream revision (an event at or before the
 *    entry's revision is skipped), so the load and the tail may overlap in any order.
 *  - **Fresh.** The feed is polled every `pollMs` (and at once after an append of this process).
 *    `asOf` is the instant the last read that reached the store's head began: every event whose
 *    append was acknowledged before `asOf` (by any process) is in the view. Positions are handed
 *    out in commit order in SQLite and PostgreSQL, so a read that starts after an acknowledgement
 *    sees it. Bound: an event is in answers within `pollMs` + one read of the feed after its append
 *    was acknowledged; while the store does not answer, `asOf` stops moving and says so.
 *  - **Read-your-writes.** Appends of this process (HTTP, Kafka ingest, scheduler) report their
 *    position (`noteLocalAppend`); a check first waits (up to 5 s) until the view has applied the
 *    latest one, so a caller that appended and then checks in the same process sees its append.
 */
import {
  SPACE_STREAM_PREFIX,
  type UsageSource,
  periodAt,
  spaceStreamName,
  spaceIdOfStored,
  spaceIdOfStoredJson,
} from '@metering/domain';
import type { EventStore, StoredEvent, StoredEventJson } from '@metering/event-store';
import { type FoldedEvent, isJsonEvent } from './apply-events';
import type { Metrics } from '../observability/metrics';
import type { BalanceReadModel, SpaceRow } from './balance-read-model';
import { Entry, periodUsageOf } from './entitlement-view-entry';

import { foldedOfJson, withLegacyMoves } from './legacy-moves';

export interface EntitlementViewOptions {
  /** Most Spaces kept (LRU). */
  maxSpaces: number;
  /** Feed poll interval when idle. */
  pollMs: number;
  /** Events per feed read. */
  batchSize?: number;
  now: () => number;
  logger?: { error(obj: unknown, msg?: string): void; warn?(obj: unknown, msg?: string): void };
}

/** The Space a feed event belongs to, as `applyEvent` derives it. */
const spaceOf = spaceIdOfStored;

export interface ViewStats {
  spaces: number;
  hits: number;
  misses: number;
  evictions: number;
  position: bigint;
  asOf: number;
}

export class EntitlementView {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, FoldedEvent[]>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private position = 0n;
  private localHead = 0n;
  private ticks = 0;
  /** Instant the last read that reached the head began (asOf); -1 before the first. */
  private caughtUpAt = -1;
  private asOfIso = '';
  private asOfIsoAt = Number.NaN;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private wakeAgain = false;
  private stopped = true;
  private waiters: { position: bigint; resolve: () => void }[] = [];
  private failures = 0;
  readonly stats = { hits: 0, misses: 0, evictions: 0 };
  private readonly batchSize: number;

  constructor(
    private readonly store: EventStore,
    private readonly readModel: BalanceReadModel,
    private readonly options: EntitlementViewOptions,
  ) {
    this.batchSize = options.batchSize ?? 5000;
  }

  setLogger(logger: EntitlementViewOptions['logger']): void {
    this.options.logger = logger;
  }

  /** Starts at the store's head (entries are loaded on demand, so no history is replayed). */
  async start(): Promise<void> {
    const t = this.options.now();
    this.position = await this.store.headPosition();
    this.setCaughtUp(t);
    this.stopped = false;
    this.schedule(this.options.pollMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** The instant up to which the view is known to hold every acknowledged event (ISO). */
  get asOf(): string {
    if (this.asOfIsoAt !== this.caughtUpAt) {
      this.asOfIso = new Date(this.caughtUpAt).toISOString();
      this.asOfIsoAt = this.caughtUpAt;
    }
    return this.asOfIso;
  }

  viewStats(): ViewStats {
    return { spaces: this.entries.size, ...this.stats, position: this.position, asOf: this.caughtUpAt };
  }

  /** An append of this process reached `position`: checks wait for it (read-your-writes) and the feed is read now. */
  noteLocalAppend(position: bigint): void {
    if (position > this.localHead) this.localHead = position;
    if (!this.stopped) this.wake();
  }

  /**
   * The Space's usage source, fresh up to `asOf`: synchronous from memory when the Space is in
   * the view and this process's own appends are applied; otherwise after the wait or the load.
   */
  source(spaceId: string, now: number): UsageSource | Promise<UsageSource> {
    // (Not while the feed fails: the answer is then as of `asOf`, which says so, rather than 5 s late.)
    if (this.localHead > this.position && this.failures === 0) return this.waitFor(this.localHead, 5000).then(() => this.sourceAfterWait(spaceId, now));
    return this.sourceAfterWait(spaceId, now);
  }

  private sourceAfterWait(spaceId: string, now: number): UsageSource | Promise<UsageSource> {
    const e = this.entries.get(spaceId);
    if (e !== undefined) {
      const start = e.periodAt(now).start;
      if (start === e.fromPeriod) {
        this.touch(spaceId, e);
        this.stats.hits++;
        return e;
      }
      if (start > e.fromPeriod) {
        // A period ended: earlier rows are never asked again.
        e.periods = e.periods.filter((p) => p.start >= start);
        e.fromPeriod = start;
        this.touch(spaceId, e);
        this.stats.hits++;
        return e;
      }
      // A back-dated change moved the running period before what the entry holds: load again.
      this.entries.delete(spaceId);
    }
    this.stats.misses++;
    return this.load(spaceId, now);
  }

  private touch(_spaceId: string, e: Entry): void {
    e.tick = ++this.ticks;
  }

  private load(spaceId: string, now: number): Promise<Entry> {
    let p = this.inflight.get(spaceId);
    if (p) return p;
    p = this.doLoad(spaceId, now).finally(() => {
      this.inflight.delete(spaceId);
      this.loading.delete(spaceId);
    });
    this.inflight.set(spaceId, p);
    return p;
  }

  private async doLoad(spaceId: string, now: number): Promise<Entry> {
    const buffered: FoldedEvent[] = [];
    this.loading.set(spaceId, buffered);
    const got = await this.readModel.spaceForView(spaceId);
    const row: SpaceRow = got.space ?? { spaceId, timeline: [], lastResetAt: null, nextResetAt: null, revision: -1 };
    const fromPeriod = periodAt(row.timeline, now).start;
    const entry = new Entry(row, fromPeriod, got.usage.filter((u) => u.periodStart >= fromPeriod).map(periodUsageOf));
    // Whatever the read model has not applied yet, from the stream itself.
    const after = await withLegacyMoves(this.store, await this.store.readStream(spaceStreamName(spaceId), { fromRevision: row.revision + 1 }));
    for (const e of after) entry.apply(e);
    for (const e of buffered) entry.apply(e);
    // A back-dated change in the tail may have moved the running period before fromPeriod.
    const start = periodAt(entry.row.timeline, now).start;
    if (start < entry.fromPeriod) {
      entry.fromPeriod = start;
      // Reload the rows from here on (rare): fold the whole stream into a fresh entry.
      return this.fullFold(spaceId, start, buffered);
    }
    this.keep(spaceId, entry);
    return entry;
  }

  /** The Space folded from its whole stream, keeping periods from `fromPeriod` (rare path). */
  private async fullFold(spaceId: string, fromPeriod: number, buffered: FoldedEvent[]): Promise<Entry> {
    const entry = new Entry({ spaceId, timeline: [], lastResetAt: null, nextResetAt: null, revision: -1 }, fromPeriod, []);
    for (const e of await withLegacyMoves(this.store, await this.store.readStream(spaceStreamName(spaceId)))) entry.apply(e);
    for (const e of buffered) entry.apply(e);
    this.keep(spaceId, entry);
    return entry;
  }

  /** Stores a loaded entry; over maxSpaces, evicts the least recently used tenth in one sweep (O(1) amortised per load). */
  private keep(spaceId: string, entry: Entry): void {
    if (this.options.maxSpaces <= 0) return;
    entry.tick = ++this.ticks;
    this.entries.set(spaceId, entry);
    const max = this.options.maxSpaces;
    if (this.entries.size <= max) return;
    const keep = max - Math.max(1, Math.floor(max / 10));
    const ticks = new Float64Array(this.entries.size);
    let i = 0;
    for (const e of this.entries.values()) ticks[i++] = e.tick;
    ticks.sort();
    const cutoff = ticks[this.entries.size - keep - 1];
    for (const [id, e] of this.entries)
      if (e.tick <= cutoff) {
        this.entries.delete(id);
        this.stats.evictions++;
      }
  }

  private setCaughtUp(t: number): void {
    if (t > this.caughtUpAt) this.caughtUpAt = t;
  }

  private schedule(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run();
    }, ms);
    this.timer.unref?.();
  }

  private wake(): void {
    if (this.running) {
      this.wakeAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.run();
  }

  private run(): void {
    if (this.running || this.stopped) return;
    this.wakeAgain = false;
    this.running = this.poll()
      .then(
        () => {
          this.failures = 0;
        },
        (err) => {
          this.failures++;
          if (this.failures === 1 || this.failures % 100 === 0)
            this.options.logger?.error({ err, failures: this.failures }, 'entitlement view: reading the feed failed; asOf stops until it answers');
        },
      )
      .finally(() => {
        this.running = null;
        const backoff = this.failures ? Math.min(5000, this.options.pollMs * 2 ** Math.min(this.failures, 6)) : this.options.pollMs;
        if (this.wakeAgain && !this.failures) this.wake();
        else this.schedule(backoff);
      });
  }

  /** Reads the feed to its head, applying the events of the Spaces in the view. */
  private async poll(): Promise<void> {
    for (;;) {
      const t = this.options.now();
      const options = { after: this.position, maxCount: this.batchSize, streamPrefix: SPACE_STREAM_PREFIX };
      // As JSON text when the store can: only the events of Spaces in the view are parsed.
      const page = this.store.readAllJson ? await this.store.readAllJson(options) : await this.store.readAll(options);
      if (page.length > 0) {
        await this.applyPage(page);
        this.position = page[page.length - 1].globalPosition;
      }
      if (page.length < this.batchSize) {
        this.setCaughtUp(t);
        break;
      }
      if (this.stopped) return;
    }
    this.release();
  }

  private async applyPage(page: StoredEvent[] | StoredEventJson[]): Promise<void> {
    let relevant: FoldedEvent[] | null = null;
    for (const e of page) {
      // Most feed events are of Spaces the view does not hold: a JSON one's Space is read from its
      // text, and it is parsed only when the text cannot tell or the Space is held.
      const json = isJsonEvent(e);
      let parsed: FoldedEvent | null = null;
      const id = json ? (spaceIdOfStoredJson(e.streamName, e.dataJson) ?? spaceOf((parsed = foldedOfJson(e)))) : spaceOf(e);
      if (!this.entries.has(id) && !this.loading.has(id)) continue;
      (relevant ??= []).push(json ? (parsed ?? foldedOfJson(e)) : e);
    }
    if (relevant === null) return;
    const events = await withLegacyMoves(this.store, relevant);
    for (const e of events) {
      const id = spaceOf(e);
      const entry = this.entries.get(id);
      if (entry !== undefined) entry.apply(e);
      else this.loading.get(id)?.push(e);
    }
  }

  private release(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.position <= this.position);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.position > this.position);
    for (const w of ready) w.resolve();
  }

  /** Resolves once the view has applied `position` (or after the timeout: the answer's asOf then says how fresh it is). */
  waitFor(position: bigint, timeoutMs: number): Promise<void> {
    if (position <= this.position || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        position,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      }, timeoutMs);
      this.waiters.push(waiter);
      this.wake();
    });
  }
}


/**
 * The view of an instance with the api role (null otherwise, or with ENTITLEMENT_VIEW_MAX_SPACES=0),
 * its metrics registered. The composition root reports this process's appends to it
 * (`noteLocalAppend`) so that a check reads its own writes.
 */
export function createEntitlementView(
  config: { roles: ReadonlySet<string>; entitlementViewMaxSpaces: number; entitlementViewPollMs: number },
  storage: { store: EventStore; readModel: BalanceReadModel },
  now: () => number,
  metrics: Metrics,
): EntitlementView | null {
  if (!config.roles.has('api') || config.entitlementViewMaxSpaces <= 0) return null;
  const view = new EntitlementView(storage.store, storage.readModel, { maxSpaces: config.entitlementViewMaxSpaces, pollMs: config.entitlementViewPollMs, now });
  metrics.setEntitlementView(() => {
    const s = view.viewStats();
    return { spaces: s.spaces, hits: s.hits, misses: s.misses, evictions: s.evictions, stalenessSeconds: Math.max(0, (now() - s.asOf) / 1000) };
  });
  return view;
}
