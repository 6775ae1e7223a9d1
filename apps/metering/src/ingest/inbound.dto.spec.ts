import fc from 'fast-check';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { InboundType } from '@metering/domain';
import { INBOUND_DTOS, certainlyValid, parseInbound, toRejections } from './inbound.dto';

/** What parseInbound did before its fast path: class-transformer for every body. */
function reference(raw: Record<string, unknown>, type: InboundType) {
  const body = { ...raw };
  delete body.type;
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
        fc.constantFrom<InboundType>('generation-performed', 'batch-exported'),
        fc.array(fc.tuple(fc.constantFrom('eventId', 'spaceId', 'userId', 'feature', 'medium', 'generations', 'batchId', 'platform', 'images', 'extra'), oddValue), { maxLength: 3 }),
        instants,
        (type, changes, occurredAt) => {
          const body: Record<string, unknown> = { ...JSON.parse(JSON.stringify(valid[type])), occurredAt };
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
    expect(certainlyValid(valid['subscription-changed'], 'subscription-changed')).toBe(false); // always class-validator
  });

  test('names the field and the rule', () => {
    const r = parseInbound({ ...valid['generation-performed'], generations: 0 }, 'generation-performed');
    expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ field: 'generations', rule: 'min' })] });
  });
});
