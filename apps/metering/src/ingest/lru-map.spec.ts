import fc from 'fast-check';
import { LruMap } from './lru-map';

type Op = { op: 'set'; k: number; v: number } | { op: 'touch'; k: number } | { op: 'delete'; k: number } | { op: 'shift' } | { op: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), k: fc.integer({ min: 0, max: 30 }), v: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('touch' as const), k: fc.integer({ min: 0, max: 30 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), k: fc.integer({ min: 0, max: 30 }) }) },
  { weight: 4, arbitrary: fc.constant({ op: 'shift' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

describe('LruMap', () => {
  it('behaves as a Map in recency order whose oldest is its first key (any sequence of operations)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const lru = new LruMap<number, number>();
        const model = new Map<number, number>(); // the naive LRU: delete + set, oldest = keys().next()
        for (const o of ops) {
          if (o.op === 'set') {
            lru.set(o.k, o.v);
            model.delete(o.k);
            model.set(o.k, o.v);
          } else if (o.op === 'touch') {
            const v = model.get(o.k);
            if (v !== undefined) {
              model.delete(o.k);
              model.set(o.k, v);
            }
            expect(lru.touch(o.k)).toBe(v);
          } else if (o.op === 'delete') {
            expect(lru.delete(o.k)).toBe(model.delete(o.k));
          } else if (o.op === 'shift') {
            const first = model.entries().next();
            const want = first.done ? undefined : first.value;
            if (want) model.delete(want[0]);
            expect(lru.shift()).toEqual(want);
          } else {
            lru.clear();
            model.clear();
          }
          expect(lru.size).toBe(model.size);
          expect([...lru.keys()]).toEqual([...model.keys()]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
