/**
 * Hostile-input generators (fast-check), shared by the fuzz tests (test/fuzz) and the torture
 * run's poison messages (test/support/workload/poison.ts), so the same shapes that never crash a
 * request in the fuzz run are also thrown at the service while it is being killed and restarted.
 *
 * Shapes: arbitrary JSON values, prototype-named keys (`__proto__`, `constructor`, `toString`...),
 * deep nesting (to thousands of levels), huge and odd numbers, odd unicode (NUL, control
 * characters, unpaired surrogates, bidi overrides, line separators), over-long identifiers,
 * instants out of range, wrong JSON types in every field of every inbound contract, raw bytes.
 */
import fc from 'fast-check';

export type InboundKind = 'generation-performed' | 'batch-exported' | 'subscription-changed';

/** Names every object inherits, and the two that reach its prototype. */
export const PROTOTYPE_KEYS = [
  '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf',
  'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__lookupGetter__',
] as const;

export const FIELDS: Record<InboundKind, readonly string[]> = {
  'generation-performed': ['eventId', 'spaceId', 'userId', 'feature', 'medium', 'generations', 'occurredAt', 'batchId', 'platform'],
  'batch-exported': ['eventId', 'spaceId', 'userId', 'batchId', 'images', 'platform', 'occurredAt'],
  'subscription-changed': ['eventId', 'spaceId', 'plan', 'cycle', 'effectiveAt', 'customLimits'],
};

/** An object with exactly these own properties (also "__proto__", as JSON.parse would make it). */
export function ownObject(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** `depth` levels of arrays and objects (built iteratively: no recursion, any depth). */
export function nested(depth: number, leaf: unknown = 1, objects = true): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = objects && i % 2 === 0 ? { a: v } : [v];
  // fast-check prints counterexamples recursively: let it print this one short (JSON ignores symbols).
  Object.defineProperty(v, fc.toStringMethod, { value: () => `nested(${depth}, ${JSON.stringify(leaf)}, ${objects})`, enumerable: false });
  return v;
}

export const oddStrings: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '', ' ', '\u0000', 'a\u0000b', '\u001b[2J\u001b[31m', '\u0007', '\r\n', '\u0085', '\u009b', '\ud800', '\udfff', 'x\ud83d', '\u202e', '\u2028', '\ufeff',
    'a'.repeat(129), 'S'.repeat(5000), '9223372036854775808', '8640000000000000', '-1', '1e309', 'NaN', 'Infinity', 'null', 'true',
    '1969-12-31T23:59:59Z', '1999-12-31T23:59:59Z', '0001-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z',
    'generation-performed', 'enterprise', 'weekly', 'ai_backgrounds', 'web', '../../etc/passwd', '%00', '<script>', "'; DROP TABLE x; --",
  ),
  fc.constantFrom(...PROTOTYPE_KEYS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

export const oddNumbers: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, -1, 0.5, 1e-300, 1e21, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 2 ** 63, Number.MAX_VALUE, Number.MIN_VALUE, 100, 101, 250, 251, 10_000, 10_001, 100_001, 1e12 + 1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** Deep nesting: a few levels over the contracts' depth, or thousands. */
export const deepValues: fc.Arbitrary<unknown> = fc
  .tuple(fc.oneof(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 1000, max: 5000 })), fc.boolean())
  .map(([depth, objects]) => nested(depth, 1, objects));

/** Objects whose keys are prototype names (and some ordinary keys). */
export const prototypeObjects: fc.Arbitrary<Record<string, unknown>> = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), oddStrings), fc.jsonValue({ maxDepth: 2 })), { maxLength: 4 })
  .map(ownObject);

/** Any JSON value worth sending: arbitrary JSON, odd scalars, prototype objects, deep nesting. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 3 },
  { arbitrary: oddStrings, weight: 2 },
  { arbitrary: oddNumbers, weight: 2 },
  { arbitrary: prototypeObjects, weight: 2 },
  { arbitrary: deepValues, weight: 1 },
  { arbitrary: fc.constantFrom(null, true, false, [], {}), weight: 1 },
);

/** A value a field of the given kind cannot accept: another JSON type, or an odd value of its own type. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(hostileJson, oddStrings, oddNumbers, fc.constantFrom(undefined));

export type Mutation =
  | { kind: 'replace'; field: string; value: unknown }
  | { kind: 'remove'; field: string }
  | { kind: 'extra'; field: string; value: unknown }
  | { kind: 'type'; value: unknown };

/** One change to a valid event of `kind` that is meant to break it (it may, rarely, leave it valid). */
export function mutation(kind: InboundKind): fc.Arbitrary<Mutation> {
  const field = fc.constantFrom(...FIELDS[kind]);
  return fc.oneof(
    { arbitrary: fc.tuple(field, wrongValue).map(([f, value]): Mutation => ({ kind: 'replace', field: f, value })), weight: 6 },
    { arbitrary: field.map((f): Mutation => ({ kind: 'remove', field: f })), weight: 1 },
    { arbitrary: fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), oddStrings), hostileJson).map(([f, value]): Mutation => ({ kind: 'extra', field: f, value })), weight: 2 },
    { arbitrary: fc.oneof(fc.constantFrom<unknown>(...PROTOTYPE_KEYS), hostileJson).map((value): Mutation => ({ kind: 'type', value })), weight: 1 },
  );
}

/** Applies a mutation to a copy of `event` (own properties only: "__proto__" stays a key). */
export function applyMutation(event: Record<string, unknown>, m: Mutation): Record<string, unknown> {
  const entries = Object.entries(event);
  switch (m.kind) {
    case 'replace':
      return ownObject([...entries.filter(([k]) => k !== m.field), ...(m.value === undefined ? [] : [[m.field, m.value] as [string, unknown]])]);
    case 'remove':
      return ownObject(entries.filter(([k]) => k !== m.field));
    case 'extra':
      return ownObject([...entries.filter(([k]) => k !== m.field), [m.field, m.value]]);
    case 'type':
      return ownObject([...entries.filter(([k]) => k !== 'type'), ['type', m.value]]);
  }
}

/**
 * A mutation that certainly makes the event invalid (for poison that must be dead-lettered):
 * a wrong JSON type in a required field, a prototype-named key, or nesting past the contract's
 * depth. `expect` is what the dead letter's errors must mention.
 */
export function certainPoison(kind: InboundKind): fc.Arbitrary<{ mutation: Mutation; expect: string }> {
  const required = FIELDS[kind].filter((f) => f !== 'eventId' && f !== 'spaceId' && f !== 'batchId' && f !== 'platform' && f !== 'customLimits');
  const wrongType = fc.oneof(fc.constantFrom<unknown>(null, true, false, [], {}), deepValues, prototypeObjects.filter((o) => Object.keys(o).length > 0));
  return fc.oneof(
    fc.tuple(fc.constantFrom(...required), wrongType).map(([field, value]) => ({ mutation: { kind: 'replace', field, value } as Mutation, expect: field })),
    fc.tuple(fc.constantFrom(...PROTOTYPE_KEYS), fc.jsonValue({ maxDepth: 2 })).map(([field, value]) => ({ mutation: { kind: 'extra', field, value } as Mutation, expect: field })),
    fc.tuple(fc.constantFrom(...required), fc.integer({ min: 3, max: 3000 })).map(([field, depth]) => ({ mutation: { kind: 'replace', field, value: nested(depth) } as Mutation, expect: field })),
  );
}

/** Raw bytes, some of them almost JSON. */
export const hostileBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 80 }).map((s) => Buffer.from(s, 'utf8')),
  fc.constantFrom('', '{', '[', '{"a":', 'null', '"x"', '1e999', '\ufeff{}', '{"eventId":"x",}', '{"__proto__":{"x":1}}').map((s) => Buffer.from(s)),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => Buffer.from('['.repeat(n))),
);

/** Text that is not JSON once prefixed by a word (bytes as well-formed UTF-8: they survive a round trip). */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  hostileBytes.map((b) => b.toString('utf8')),
  oddStrings,
  hostileJson.map((v) => toJson(v)),
).map((s) => s.replace(/[\ud800-\udfff]/g, '\ufffd'));

/**
 * JSON text of any value, like JSON.stringify (own "__proto__" keys kept, undefined members left
 * out, non-finite numbers as null) but iterative: thousands of levels do not overflow the stack.
 */
export function toJson(value: unknown): string {
  const out: string[] = [];
  type Frame = { kind: 'value'; v: unknown } | { kind: 'text'; s: string };
  const stack: Frame[] = [{ kind: 'value', v: value === undefined ? null : value }];
  while (stack.length) {
    const f = stack.pop()!;
    if (f.kind === 'text') {
      out.push(f.s);
      continue;
    }
    const v = f.v;
    if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string' || typeof v === 'bigint') {
      out.push(typeof v === 'bigint' ? String(v) : (JSON.stringify(v) ?? 'null'));
      continue;
    }
    if (typeof v !== 'object') {
      out.push('null');
      continue;
    }
    const frames: Frame[] = [];
    if (Array.isArray(v)) {
      frames.push({ kind: 'text', s: '[' });
      v.forEach((x, i) => {
        if (i) frames.push({ kind: 'text', s: ',' });
        frames.push({ kind: 'value', v: x === undefined || typeof x === 'function' || typeof x === 'symbol' ? null : x });
      });
      frames.push({ kind: 'text', s: ']' });
    } else {
      frames.push({ kind: 'text', s: '{' });
      let first = true;
      for (const k of Object.keys(v)) {
        const x = (v as Record<string, unknown>)[k];
        if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
        frames.push({ kind: 'text', s: `${first ? '' : ','}${JSON.stringify(k)}:` });
        frames.push({ kind: 'value', v: x });
        first = false;
      }
      frames.push({ kind: 'text', s: '}' });
    }
    for (let i = frames.length - 1; i >= 0; i--) stack.push(frames[i]);
  }
  return out.join('');
}

/** Draws one value from `arb` with a seed taken from `rand` (a seeded PRNG): deterministic. */
export function drawWith<T>(arb: fc.Arbitrary<T>, rand: () => number): T {
  return fc.sample(arb, { seed: Math.floor(rand() * 0x7fffffff), numRuns: 1 })[0];
}
