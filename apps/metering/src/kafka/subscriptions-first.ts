/**
 * Subscriptions first: the best-effort order across the inbound topics. Kafka keeps a Space's
 * messages in order within one topic only, so a usage message can reach the consumer before a
 * subscription change produced earlier on the billing topic, and be decided on the plan the Space
 * had before it (on free: a first batch export at 100 % at once). So a usage batch is decided only
 * once the consumer group has no lag on the subscription topic as of a moment at or after the
 * batch's newest message was produced (its record timestamp, capped at the batch's arrival when the
 * producer's clock is ahead): every subscription change the broker held then is decided and
 * committed (offsets are committed after their batch is stored). Until then the batch is handed
 * back (`RetryLater`): its partition is paused and delivered again shortly, while the consumer goes
 * on fetching the other partitions, the subscription topic's among them (a handler that waited in
 * place would hold kafkajs' fetch loop, and with it the subscriptions it waits for). The wait is
 * bounded (`maxWaitMs`, counted from the batch's first delivery): a subscription topic that cannot
 * catch up (a rebalance, a store outage) delays usage by at most that, then usage is decided as
 * before.
 *
 * One ask of the group's lag is in flight at a time; batches share it when it started at or after
 * what they need. After a backlog is drained, one ask that finds no lag answers every batch
 * produced before it.
 */

export interface SubscriptionsFirstOptions {
  /** The group's total lag on the subscription topic now (messages); null or a throw: not known. */
  lag: () => Promise<number | null>;
  /** Longest a usage batch is held back, from its first delivery; 0 turns the rule off. */
  maxWaitMs: number;
  now: () => number;
}

/**
 * What to do with a usage batch: decide it (the rule is off, the subscriptions are decided, or the
 * bound is reached), or hand it back for now.
 */
export type SubscriptionsFirstOutcome = 'off' | 'caught-up' | 'expired' | 'not-yet';

/** Batches held back at most: a bound on the first-delivery times kept (a batch that moved to another member leaves its entry). */
const HELD_MAX = 10_000;

export class SubscriptionsFirst {
  /** The start of the latest ask that found no lag: every subscription message the broker held then is decided. */
  private caughtUpAt = Number.NEGATIVE_INFINITY;
  private asking: { startedAt: number; done: Promise<void> } | null = null;
  /** When each batch held back (by topic, partition and first offset) was first delivered. */
  private readonly held = new Map<string, number>();
  /** Asks made (tests). */
  asks = 0;

  constructor(private readonly options: SubscriptionsFirstOptions) {}

  /**
   * Whether the usage batch `batch` (a key of its partition and first offset), whose newest message
   * has the record timestamp `newest` (ms), can be decided now.
   */
  async check(batch: string, newest: number): Promise<SubscriptionsFirstOutcome> {
    const o = this.options;
    if (o.maxWaitMs <= 0) return 'off';
    const arrived = o.now();
    const target = Math.min(newest, arrived);
    if (this.caughtUpAt < target) await this.askFrom(target);
    if (this.caughtUpAt >= target) {
      this.held.delete(batch);
      return 'caught-up';
    }
    const since = this.held.get(batch);
    if (since === undefined) {
      if (this.held.size >= HELD_MAX) this.held.clear();
      this.held.set(batch, arrived);
      return 'not-yet';
    }
    if (o.now() - since < o.maxWaitMs) return 'not-yet';
    this.held.delete(batch);
    return 'expired';
  }

  /** Until an ask that started at or after `target` has answered: joins the one in flight when it did, else asks anew. */
  private async askFrom(target: number): Promise<void> {
    for (let a = this.asking; a !== null; a = this.asking) {
      await a.done;
      if (a.startedAt >= target) return;
    }
    const startedAt = this.options.now();
    this.asks++;
    const done = this.options
      .lag()
      .then(
        (lag) => {
          if (lag === 0 && startedAt > this.caughtUpAt) this.caughtUpAt = startedAt;
        },
        () => undefined,
      )
      .finally(() => {
        if (this.asking?.done === done) this.asking = null;
      });
    this.asking = { startedAt, done };
    await done;
  }
}
