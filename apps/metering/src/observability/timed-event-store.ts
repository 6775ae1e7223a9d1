/**
 * An EventStore decorator that times appends into the metrics histogram. It is a Proxy: every
 * other member (readAll, subscribe, notify, adapter-specific fields, methods added to the port
 * later) reaches the adapter unchanged, and an optional method is present exactly when the
 * adapter has it.
 */
import { type AppendResult, type EventStore, WrongExpectedRevisionError } from '@metering/event-store';
import type { Histogram } from 'prom-client';

const TIMED = new Set<PropertyKey>(['append', 'appendMany']);

/**
 * `onAppended` (optional) hears the last global position of every successful append or appendMany
 * of this process (the entitlement view's read-your-writes).
 */
export function timedEventStore<S extends EventStore>(inner: S, histogram: Histogram<'op' | 'outcome'>, onAppended?: (position: bigint) => void): S {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      let fn = cache.get(prop);
      if (fn === undefined || (fn as { original?: unknown }).original !== value) {
        const bound = (value as (...a: unknown[]) => unknown).bind(target);
        const op = String(prop);
        fn = TIMED.has(prop)
          ? async (...args: unknown[]) => {
              const end = histogram.startTimer({ op });
              try {
                const r = await bound(...args);
                end({ outcome: 'ok' });
                if (onAppended) {
                  let last = 0n;
                  for (const x of (Array.isArray(r) ? r : [r]) as AppendResult[]) if (x.lastGlobalPosition > last) last = x.lastGlobalPosition;
                  if (last > 0n) onAppended(last);
                }
                return r;
              } catch (err) {
                end({ outcome: err instanceof WrongExpectedRevisionError ? 'conflict' : 'error' });
                throw err;
              }
            }
          : bound;
        if (fn !== bound) (fn as { original?: unknown }).original = value;
        else fn = Object.assign((...args: unknown[]) => bound(...args), { original: value });
        cache.set(prop, fn);
      }
      return fn;
    },
  });
}
