/**
 * kafkajs 2.2.4 keeps a 1 ms timer running for every broker connection, for as long as the
 * connection lives (tulios/kafkajs#1704, #1751; the project is no longer maintained, so the fix is
 * not released). Its request queue checks for pending requests after every response and then
 * schedules the next check whatever the queue holds; with nothing pending and no throttling, the
 * delay it computes is `throttledUntil - Date.now()` = `-1 - Date.now()`, a negative delay that
 * Node clamps to 1 ms (and, from Node 23, reports once as a TimeoutNegativeWarning). So an idle
 * service never sleeps: measured here with a broker of scripts/kafka, one idle consumer, producer
 * and admin woke about 3,600 times a second, and the idle service used 33 ms of CPU a second.
 *
 * The fix is the queue's own rule with its gap closed: a check is scheduled only while a request
 * waits in the queue, at the end of the client-side throttle or, if not throttled (in-flight
 * limit), after kafkajs' own 10 ms interval. Nothing is lost by not checking an empty queue: a
 * request that cannot be sent at once is queued by `push`, which schedules its check, and every
 * response or timeout checks the queue at once, as before.
 *
 * Applied by `createKafkaJsMessaging` (this folder is the only one that knows kafkajs), to the
 * class, so for every kafkajs client of the process. It replaces the method only on the kafkajs it
 * was written against: another version, or a method that no longer reads as the one above, is left
 * untouched and reported.
 */
// kafkajs publishes no types for its internals, and has no "exports" map: its files can be required.

/** The request queue's fields the method reads (kafkajs src/network/requestQueue/index.js). */
interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs' CHECK_PENDING_REQUESTS_INTERVAL (not exported by it). */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;
/** The kafkajs release whose method this replaces. */
export const KAFKAJS_VERSION_FIXED = '2.2.4';
const FIXED = Symbol.for('metering.kafkajs.requestQueueIdleLoopFixed');

export type IdleLoopFix = { applied: true } | { applied: false; reason: string };

function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const untilUnthrottled = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(
    () => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    },
    untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_REQUESTS_INTERVAL_MS,
  );
}

/** The kafkajs request queue class (its module's export). */
export function kafkaJsRequestQueue(): { prototype: RequestQueueLike } {
  return require('kafkajs/src/network/requestQueue') as { prototype: RequestQueueLike };
}

/** Replaces kafkajs' `RequestQueue#scheduleCheckPendingRequests` (see above); once per process. */
export function fixKafkaJsIdleLoop(): IdleLoopFix {
  const proto = kafkaJsRequestQueue().prototype as RequestQueueLike & { [FIXED]?: true };
  if (proto[FIXED]) return { applied: true };
  const version = (require('kafkajs/package.json') as { version: string }).version;
  if (version !== KAFKAJS_VERSION_FIXED) return { applied: false, reason: `kafkajs ${version}, not ${KAFKAJS_VERSION_FIXED}` };
  const source = String(proto.scheduleCheckPendingRequests);
  if (!source.includes('this.throttledUntil - Date.now()') || !source.includes('CHECK_PENDING_REQUESTS_INTERVAL'))
    return { applied: false, reason: 'its RequestQueue#scheduleCheckPendingRequests is not the one this fix replaces' };
  proto.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  proto[FIXED] = true;
  return { applied: true };
}
