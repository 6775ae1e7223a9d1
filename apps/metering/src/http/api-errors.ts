import { HttpException, HttpStatus } from '@nestjs/common';
import type { Rejection } from '@metering/domain';

/** 400/422 with a body that names every field and rule. */
export function invalid(errors: Rejection[], status = HttpStatus.UNPROCESSABLE_ENTITY): HttpException {
  return new HttpException({ error: status === 400 ? 'bad_request' : 'rejected', errors }, status);
}

export const SPACE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

export function checkSpaceId(spaceId: string): void {
  if (!SPACE_ID.test(spaceId))
    throw invalid([{ field: 'spaceId', rule: 'matches', message: 'spaceId: 1-128 letters, digits and . _ : @ - only' }], 400);
}

export function intParam(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw invalid([{ field: name, rule: 'range', message: `${name} must be an integer from ${min} to ${max}` }], 400);
  return n;
}
