/**
 * The KurrentDB adapter's subscriptions: a catch-up subscription to $all, filtered server-side
 * (see kurrentdb-event-store.ts).
 */
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import { SubscribeOptions, Subscription } from '../port';
import { reportUnhandled, safeCall } from '../internal/polling-subscription';
import { isKurrentReadTransient } from './kurrentdb-errors';
import { fromPosition, isSystem, positionOf, serverFilter, toStored } from './kurrentdb-mapping';

const MAX_BACKOFF_MS = 5_000;

/**
 * Catch-up subscription to $all from a checkpoint; resubscribes from the last delivered
 * position after a transient failure. Events are handed to the handler one page per event
 * (the server pushes them one at a time); delivery is sequential and never repeats a position.
 */
export class KurrentCatchUpSubscription implements Subscription {
  private stopped = false;
  private current: { unsubscribe(): Promise<void> } | null = null;
  private readonly done: Promise<void>;
  private wakeSleep: (() => void) | null = null;

  constructor(
    private readonly client: KurrentDBClient,
    private readonly options: SubscribeOptions,
    private last: bigint,
    private readonly streamPrefix: string | null,
    private readonly types: string[] | null,
  ) {
    this.done = this.run();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    await Promise.resolve();
    const { handler, onError = reportUnhandled } = this.options;
    let failures = 0;
    while (!this.stopped) {
      const sub = this.client.subscribeToAll({ fromPosition: fromPosition(this.last), filter: serverFilter(this.streamPrefix, this.types) });
      this.current = sub;
      try {
        for await (const resolved of sub) {
          if (this.stopped) break;
          failures = 0;
          const e = resolved.event;
          if (!e) continue;
          const pos = positionOf(resolved);
          if (pos <= this.last) continue;
          if (
            isSystem(e.streamId, e.type) ||
            (this.streamPrefix && !e.streamId.startsWith(this.streamPrefix)) ||
            (this.types && !this.types.includes(e.type))
          ) {
            this.last = pos;
            continue;
          }
          try {
            await handler([toStored(e, pos)]);
          } catch (err) {
            this.stopped = true;
            safeCall(onError, err);
            break;
          }
          this.last = pos;
        }
        if (!this.stopped) {
          // The server ended the subscription: resubscribe from the checkpoint.
          await this.sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(++failures, 10)));
        }
      } catch (err) {
        if (this.stopped) break;
        if (isKurrentReadTransient(err)) {
          await this.sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(++failures, 10)));
          continue;
        }
        this.stopped = true;
        safeCall(onError, err);
      } finally {
        this.current = null;
        await sub.unsubscribe().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeSleep?.();
    await this.current?.unsubscribe().catch(() => undefined);
    await this.done;
  }
}
