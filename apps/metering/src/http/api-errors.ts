import { HttpException, HttpStatus } from '@nestjs/common';
import type { Rejection } from '@metering/domain';
import { MAX_ID_LENGTH } from '../ingest/inbound.dto';

/** 400/422 with a body that names every field and rule. */
export function invalid(errors: Rejection[], status = HttpStatus.UNPROCESSABLE_ENTITY): HttpException {
  return new HttpException({ error: status === 400 ? 'bad_request' : 'rejected', errors }, status);
}

export const SPACE_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,${MAX_ID_LENGTH - 1}}$`);

/** The same limit as in event bodies (MAX_ID_LENGTH, rule maxLength; characters: rule matches). */
export function checkSpaceId(spaceId: string): void {
  if (typeof spaceId !== 'string' || spaceId.length > MAX_ID_LENGTH)
    throw invalid([{ field: 'spaceId', rule: 'maxLength', message: `spaceId must be at most ${MAX_ID_LENGTH} characters` }], 400);
  if (!SPACE_ID.test(spaceId))
    throw invalid([{ field: 'spaceId', rule: 'matches', message: `spaceId: 1-${MAX_ID_LENGTH} letters, digits and . _ : @ - only` }], 400);
}

/** Largest store position (a signed 64-bit integer in every store). */
export const MAX_POSITION = 2n ** 63n - 1n;

/** A global position from a query parameter: 0 to 2^63-1 (rule range). */
export function positionParam(name: string, raw: string | undefined): bigint {
  if (raw === undefined || raw === '') return 0n;
  if (typeof raw !== 'string' || !/^\d{1,19}$/.test(raw) || BigInt(raw) > MAX_POSITION)
    throw invalid([{ field: name, rule: 'range', message: `${name} must be a position: an integer from 0 to ${MAX_POSITION}` }], 400);
  return BigInt(raw);
}

/** Instants a query may ask about: 1970-01-01 to 9999-12-31 (rule range). */
export const MIN_QUERY_INSTANT = 0;
export const MAX_QUERY_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');

export function checkInstantRange(name: string, t: number): number {
  if (!Number.isFinite(t) || t < MIN_QUERY_INSTANT || t > MAX_QUERY_INSTANT)
    throw invalid([{ field: name, rule: 'range', message: `${name} must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z` }], 400);
  return t;
}

export function intParam(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return def;
  if (typeof raw !== 'string') throw invalid([{ field: name, rule: 'range', message: `${name} must be given once, an integer from ${min} to ${max}` }], 400);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw invalid([{ field: name, rule: 'range', message: `${name} must be an integer from ${min} to ${max}` }], 400);
  return n;
}
