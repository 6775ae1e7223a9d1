/**
 * An EventStore decorator that times appends into the metrics histogram. It is a Proxy: every
 * other member (readAll, subscribe, notify, adapter-specific fields, methods added to the port
 * later) reaches the adapter unchanged, and an optional method is present exactly when the
 * adapter has it.
 */
import { type EventStore, WrongExpectedRevisionError } from '@metering/event-store';
import type { Histogram } from 'prom-client';

const TIMED = new Set<PropertyKey>(['append', 'appendMany']);

export function timedEventStore<S extends EventStore>(inner: S, histogram: Histogram<'op' | 'outcome'>): S {
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
