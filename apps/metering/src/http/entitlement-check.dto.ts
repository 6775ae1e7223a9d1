/**
 * The body of POST /v1/spaces/:spaceId/entitlements/check: `{feature, generations?}` or
 * `{batchImages, platform}`. One class documents it (OpenAPI) and validates it (`toRequest`): each
 * problem is a 400 naming the field and the rule. Validation is a few type checks, not
 * class-validator, because the check is the service's hottest route; the catalog rules (feature
 * known, platform known, per-batch cap) are the domain's (`checkEntitlement`).
 */
import { ApiPropertyOptional } from '@nestjs/swagger';
import type { EntitlementRequest } from '@metering/domain';
import { invalid } from './api-errors';

const NO_CONTROL = /^[^\p{Cc}\p{Cs}]*$/u;

/** `field` must be an integer from 1 to `max` (rule isInt). */
function intIn(field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
    throw invalid([{ field, rule: 'isInt', message: `${field} must be an integer from 1 to ${max}` }], 400);
  return v;
}

/** `field` must be an id of 1 to `max` characters without control characters (rule isString). */
function idIn(field: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !NO_CONTROL.test(v))
    throw invalid([{ field, rule: 'isString', message: `${field} must be an id of 1 to ${max} characters without control characters` }], 400);
  return v;
}

export class EntitlementCheckDto {
  @ApiPropertyOptional({ example: 'virtual_model', description: 'with generations; or send batchImages and platform' }) feature?: string;
  @ApiPropertyOptional({ minimum: 1, default: 1 }) generations?: number;
  @ApiPropertyOptional({ minimum: 1 }) batchImages?: number;
  @ApiPropertyOptional({ example: 'web' }) platform?: string;

  /** The entitlement request a body asks, or a 400 naming the field and the rule. */
  static toRequest(body: unknown): EntitlementRequest {
    const b: Partial<Record<keyof EntitlementCheckDto, unknown>> = typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {};
    if (b.feature !== undefined)
      return { kind: 'generation', feature: idIn('feature', b.feature, 64), generations: intIn('generations', b.generations === undefined ? 1 : b.generations, 10_000) };
    if (b.batchImages !== undefined) {
      const images = intIn('batchImages', b.batchImages, 100_000);
      if (b.platform === undefined) throw invalid([{ field: 'platform', rule: 'isString', message: 'platform is required with batchImages' }], 400);
      return { kind: 'batch', images, platform: idIn('platform', b.platform, 32) };
    }
    throw invalid([{ field: 'body', rule: 'one_of', message: 'send {feature, generations} or {batchImages, platform}' }], 400);
  }
}
