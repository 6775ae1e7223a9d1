import fc from 'fast-check';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { InboundType } from '@metering/domain';
import { INBOUND_DTOS, MAX_CUSTOM_LIMIT, certainlyValid, parseInbound, structuralRejections, toRejections } from './inbound.dto';

/** What parseInbound did before its fast path: the structural checks, then class-transformer for every body. */
function reference(raw: Record<string, unknown>, type: InboundType) {
  const body = { ...raw };
  delete body.type;
  const structural = structuralRejections(body);
  if (structural.length) return { ok: false, errors: structural };
  const errors = validateSync(plainToInstance(INBOUND_DTOS[type], body), { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  return errors.length ? { ok: false, errors: toRejections(errors) } : { ok: true };
}

const valid: Record<InboundType, Record<string, unknown>> = {
  'generation-performed': {
    eventId: 'e-1', spaceId: 's-1', userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 2, occurredAt: '2026-11-01T10:00:00Z',
  },
  'batch-exported': { eventId: 'e-2', spaceId: 's-1', userId: 'u', batchId: 'b', images: 3, platform: 'web', occurredAt: '2026-11-01T10:00:00+01:00' },
  'subscription-changed': {
    eventId: 'e-3', spaceId: 's-1', plan: 'enterprise', cycle: 'monthly', effectiveAt: '2026-11-01T00:00:00Z',
    customLimits: { ai_image_credits: 10, ai_video_credits: 1, batch_exports: 5 },
  },
};

/** A subscription change without custom limits (the common case, on the fast path). */
const flatSubscription = { eventId: 'e-4', spaceId: 's-1', plan: 'pro', cycle: 'yearly', effectiveAt: '2026-11-01T00:00:00Z' };

const oddValue = fc.oneof(
  fc.constant(undefined), fc.constant(null), fc.integer({ min: -5, max: 20_000 }), fc.double(), fc.string({ maxLength: 12 }),
  fc.constant(''), fc.constant('2026-02-30T00:00:00Z'), fc.constant('x'.repeat(200)), fc.boolean(), fc.constant([]), fc.constant({}),
  fc.constant({ ai_image_credits: -1, ai_video_credits: 0, batch_exports: 'x' }),
);

describe('parseInbound', () => {
  test.each(Object.keys(valid) as InboundType[])('accepts a valid %s body', (type) => {
    expect(parseInbound(valid[type], type)).toEqual({ ok: true, event: { type, ...valid[type] } });
  });

  test('its fast path (no class-transformer for flat bodies) decides exactly like class-transformer + class-validator', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(valid) as InboundType[])),
        fc.array(fc.tuple(fc.constantFrom('eventId', 'spaceId', 'userId', 'feature', 'medium', 'generations', 'occurredAt', 'batchId', 'platform', 'images', 'plan', 'cycle', 'effectiveAt', 'customLimits', 'extra', '__proto__'), oddValue), { maxLength: 4 }),
        (type, changes) => {
          const body: Record<string, unknown> = JSON.parse(JSON.stringify(valid[type]));
          for (const [k, v] of changes) {
            if (v === undefined) delete body[k];
            else Object.defineProperty(body, k, { value: v, enumerable: true, writable: true, configurable: true });
          }
          const got = parseInbound(body, type);
          const want = reference(body, type);
          expect(got.ok).toBe(want.ok);
          if (!got.ok) expect(got.errors).toEqual((want as { errors: unknown }).errors);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('the fast check accepts only what class-validator accepts, and does accept the common valid bodies', () => {
    const instants = fc.oneof(
      fc.date({ min: new Date('1900-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.constantFrom('Z', '+01:00', '-23:59', '+24:00', '', 'z', '+0100'), fc.constantFrom('', '.5', '.123456789', '.1234567890', ','))
        .map(([y, mo, d, h, mi, z, f]) => `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(mi).padStart(2, '0')}${f}${z}`),
      oddValue,
    );
    fc.assert(
      fc.property(
        fc.constantFrom<InboundType>('generation-performed', 'batch-exported', 'subscription-changed'),
        fc.array(
          fc.tuple(
            fc.constantFrom('eventId', 'spaceId', 'userId', 'feature', 'medium', 'generations', 'batchId', 'platform', 'images', 'plan', 'cycle', 'customLimits', 'extra'),
            fc.oneof(oddValue, fc.constantFrom('free', 'enterprise', 'ultra_10x', 'weekly', 'monthly', 'Pro', 'pro ')),
          ),
          { maxLength: 3 },
        ),
        instants,
        (type, changes, instant) => {
          const body: Record<string, unknown> =
            type === 'subscription-changed' ? { ...flatSubscription, effectiveAt: instant } : { ...JSON.parse(JSON.stringify(valid[type])), occurredAt: instant };
          for (const [k, v] of changes) {
            if (v === undefined) delete body[k];
            else body[k] = v;
          }
          if (certainlyValid(body, type)) expect(reference(body, type)).toEqual({ ok: true });
        },
      ),
      { numRuns: 5000 },
    );
    expect(certainlyValid(valid['generation-performed'], 'generation-performed')).toBe(true);
    expect(certainlyValid(valid['batch-exported'], 'batch-exported')).toBe(true);
    expect(certainlyValid(flatSubscription, 'subscription-changed')).toBe(true);
    expect(certainlyValid(valid['subscription-changed'], 'subscription-changed')).toBe(false); // custom limits: always class-validator
  });

  test.each(['toString', 'valueOf', 'hasOwnProperty', 'constructor', '__proto__', 'isPrototypeOf'])('type "%s" (a name every object inherits) is rejected, not thrown', (t) => {
    expect(parseInbound({ ...valid['generation-performed'], type: t })).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'type', rule: 'isIn' })] });
  });

  test('prototype-named keys are unknown fields, at the top and inside customLimits (also when parsed from JSON)', () => {
    for (const type of Object.keys(valid) as InboundType[]) {
      const r = parseInbound(JSON.parse(JSON.stringify(valid[type]).replace('{', '{"__proto__":{"x":1},')), type);
      expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ field: '__proto__', rule: 'unknown_field' })] });
      const c = parseInbound({ ...valid[type], constructor: 'x' }, type);
      expect(c).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'constructor', rule: 'unknown_field' })] });
    }
    const nested = JSON.parse('{"ai_image_credits":1,"ai_video_credits":1,"batch_exports":1,"__proto__":{"polluted":true}}');
    expect(parseInbound({ ...valid['subscription-changed'], customLimits: nested }, 'subscription-changed')).toEqual({
      ok: false,
      errors: [expect.objectContaining({ field: 'customLimits.__proto__', rule: 'unknown_field' })],
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('deep nesting (4,000 levels in customLimits) is rejected naming the field and max_depth, without a stack overflow', () => {
    const deep = JSON.parse('{"a":'.repeat(4000) + '1' + '}'.repeat(4000));
    const r = parseInbound({ ...valid['subscription-changed'], customLimits: deep }, 'subscription-changed');
    expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'customLimits.a', rule: 'max_depth' })] });
    const arr = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    expect(parseInbound({ ...valid['generation-performed'], userId: arr }, 'generation-performed')).toEqual({
      ok: false,
      errors: [expect.objectContaining({ field: 'userId.0', rule: 'max_depth' })],
    });
  });

  test('instants before 2000-01-01 are rejected with rule min_instant (fast path included)', () => {
    const g = parseInbound({ ...valid['generation-performed'], occurredAt: '1999-12-31T23:59:59Z' }, 'generation-performed');
    expect(g).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'occurredAt', rule: 'min_instant' })] });
    const s = parseInbound({ ...valid['subscription-changed'], effectiveAt: '1970-01-05T00:00:00Z' }, 'subscription-changed');
    expect(s).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'effectiveAt', rule: 'min_instant' })] });
    expect(parseInbound({ ...valid['batch-exported'], occurredAt: '2000-01-01T00:30:00+01:00' }, 'batch-exported').ok).toBe(false);
    expect(parseInbound({ ...valid['batch-exported'], occurredAt: '2000-01-01T00:00:00Z' }, 'batch-exported').ok).toBe(true);
  });

  test('userId, batchId, feature and platform refuse NUL, control characters and unpaired surrogates', () => {
    for (const bad of ['a\u0000b', 'a\nb', '\u001b[31mred', 'a\u0085', 'x\ud800']) {
      const r = parseInbound({ ...valid['generation-performed'], userId: bad }, 'generation-performed');
      expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'userId', rule: 'matches' })] });
      expect(parseInbound({ ...valid['batch-exported'], batchId: bad }, 'batch-exported').ok).toBe(false);
    }
    expect(parseInbound({ ...valid['generation-performed'], userId: 'Zoë 😀' }, 'generation-performed').ok).toBe(true);
  });

  test('custom limits are bounded', () => {
    const r = parseInbound({ ...valid['subscription-changed'], customLimits: { ai_image_credits: 1e300, ai_video_credits: 0, batch_exports: MAX_CUSTOM_LIMIT } }, 'subscription-changed');
    expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'customLimits.ai_image_credits', rule: 'max' })] });
  });

  test('odd field names are echoed escaped', () => {
    const r = parseInbound({ ...valid['generation-performed'], 'bad\u001b[2Jkey': 1 }, 'generation-performed');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0].field).toBe('bad\\u001b[2Jkey');
  });

  test('names the field and the rule', () => {
    const r = parseInbound({ ...valid['generation-performed'], generations: 0 }, 'generation-performed');
    expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'generations', rule: 'min' })] });
  });
});
