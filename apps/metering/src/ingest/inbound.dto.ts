/**
 * Structural validation of the inbound contracts (class-validator), shared by the HTTP API and the
 * Kafka consumer. Each problem names the field and the rule; the domain then checks the rules that
 * need the catalog (feature known, plan/cycle pair exists, per-batch cap).
 */
import 'reflect-metadata';
import { plainToInstance, Type } from 'class-transformer';
import {
  IsDefined,
  IsIn,
  IsInt,
  IsISO8601,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
  type ValidationError,
  validateSync,
} from 'class-validator';
import { CYCLES, type InboundEvent, type InboundType, MEDIA, PLANS, type Rejection, daysInMonth } from '@metering/domain';

const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
const ID_MSG = 'letters, digits and . _ : @ - only';

class InboundBase {
  @IsString() @IsNotEmpty() @MaxLength(128) @Matches(ID, { message: `eventId: ${ID_MSG}` })
  eventId!: string;

  @IsString() @IsNotEmpty() @MaxLength(128) @Matches(ID, { message: `spaceId: ${ID_MSG}` })
  spaceId!: string;
}

export class GenerationPerformedDto extends InboundBase {
  @IsString() @IsNotEmpty() @MaxLength(128)
  userId!: string;

  @IsString() @IsNotEmpty() @MaxLength(64)
  feature!: string;

  @IsIn(MEDIA as unknown as string[])
  medium!: 'image' | 'video';

  @IsInt() @Min(1) @Max(10_000)
  generations!: number;

  @IsISO8601({ strict: true, strictSeparator: true }) @Matches(/(Z|[+-]\d{2}:\d{2})$/, { message: 'occurredAt must carry a zone (Z or +hh:mm)' })
  occurredAt!: string;

  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(128)
  batchId?: string;

  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(32)
  platform?: string;
}

export class BatchExportedDto extends InboundBase {
  @IsString() @IsNotEmpty() @MaxLength(128)
  userId!: string;

  @IsString() @IsNotEmpty() @MaxLength(128)
  batchId!: string;

  @IsInt() @Min(1) @Max(100_000)
  images!: number;

  @IsString() @IsNotEmpty() @MaxLength(32)
  platform!: string;

  @IsISO8601({ strict: true, strictSeparator: true }) @Matches(/(Z|[+-]\d{2}:\d{2})$/, { message: 'occurredAt must carry a zone (Z or +hh:mm)' })
  occurredAt!: string;
}

export class LimitsDto {
  @IsInt() @Min(0) ai_image_credits!: number;
  @IsInt() @Min(0) ai_video_credits!: number;
  @IsInt() @Min(0) batch_exports!: number;
}

export class SubscriptionChangedDto extends InboundBase {
  @IsIn(PLANS as unknown as string[])
  plan!: (typeof PLANS)[number];

  @IsIn(CYCLES as unknown as string[])
  cycle!: (typeof CYCLES)[number];

  @IsISO8601({ strict: true, strictSeparator: true }) @Matches(/(Z|[+-]\d{2}:\d{2})$/, { message: 'effectiveAt must carry a zone (Z or +hh:mm)' })
  effectiveAt!: string;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => LimitsDto)
  customLimits?: LimitsDto;
}

export const INBOUND_DTOS: Record<InboundType, new () => object> = {
  'generation-performed': GenerationPerformedDto,
  'batch-exported': BatchExportedDto,
  'subscription-changed': SubscriptionChangedDto,
};

export const INBOUND_TYPES = Object.keys(INBOUND_DTOS) as InboundType[];

/** Flattens class-validator errors into field/rule/message triples. */
export function toRejections(errors: ValidationError[], prefix = ''): Rejection[] {
  const out: Rejection[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    for (const [rule, message] of Object.entries(e.constraints ?? {})) {
      out.push({ field, rule: rule === 'whitelistValidation' ? 'unknown_field' : rule, message });
    }
    if (e.children?.length) out.push(...toRejections(e.children, field));
  }
  return out;
}

// ---- fast path for the hot, valid case ------------------------------------------------------
// class-validator stays the authority: `certainlyValid` accepts only bodies class-validator
// certainly accepts (a property test checks the implication), and anything else, valid or not,
// goes through class-validator, which names the field and the rule. It halves the cost of a
// valid usage event on the Kafka path.

const ISO_STRICT = /^([1-9]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
function isStrictInstant(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const m = ISO_STRICT.exec(v);
  return m !== null && +m[3] <= daysInMonth(+m[1], +m[2] - 1);
}
const isText = (v: unknown, max: number): boolean => typeof v === 'string' && v.length > 0 && v.length <= max;
const isId = (v: unknown): boolean => isText(v, 128) && ID.test(v as string);
const isIntIn = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const FAST_KEYS: Partial<Record<InboundType, Set<string>>> = {
  'generation-performed': new Set(['eventId', 'spaceId', 'userId', 'feature', 'medium', 'generations', 'occurredAt', 'batchId', 'platform']),
  'batch-exported': new Set(['eventId', 'spaceId', 'userId', 'batchId', 'images', 'platform', 'occurredAt']),
};

/** True only when class-validator would accept the body (false means: ask class-validator). */
export function certainlyValid(body: Record<string, unknown>, type: InboundType): boolean {
  const keys = FAST_KEYS[type];
  if (!keys) return false;
  for (const k in body) if (!keys.has(k) || !Object.prototype.hasOwnProperty.call(body, k)) return false;
  if (Object.getPrototypeOf(body) !== Object.prototype) return false;
  if (!isId(body.eventId) || !isId(body.spaceId) || !isText(body.userId, 128) || !isStrictInstant(body.occurredAt)) return false;
  if (type === 'generation-performed') {
    return (
      isText(body.feature, 64) &&
      (MEDIA as readonly unknown[]).includes(body.medium) &&
      isIntIn(body.generations, 1, 10_000) &&
      (body.batchId === undefined || isText(body.batchId, 128)) &&
      (body.platform === undefined || isText(body.platform, 32))
    );
  }
  return isText(body.batchId, 128) && isIntIn(body.images, 1, 100_000) && isText(body.platform, 32);
}

export type ParsedInbound = { ok: true; event: InboundEvent } | { ok: false; errors: Rejection[] };

/**
 * Validates one inbound event. `type` comes from the body (HTTP) or from the topic (Kafka).
 * Unknown fields are refused so typos do not pass silently.
 */
export function parseInbound(raw: unknown, type?: InboundType): ParsedInbound {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, errors: [{ field: '', rule: 'object', message: 'each event must be a JSON object' }] };
  const body = { ...(raw as Record<string, unknown>) };
  const t = type ?? body.type;
  delete body.type;
  if (typeof t !== 'string' || !(t in INBOUND_DTOS))
    return { ok: false, errors: [{ field: 'type', rule: 'isIn', message: `type must be one of ${INBOUND_TYPES.join(', ')}` }] };
  if (certainlyValid(body, t as InboundType)) return { ok: true, event: { type: t, ...body } as InboundEvent };
  // Only customLimits is nested (it needs class-transformer to become a LimitsDto); a flat body
  // only needs the DTO's prototype for class-validator to find its rules, which is much cheaper.
  const Dto = INBOUND_DTOS[t as InboundType];
  // (Object.assign would run the __proto__ setter for a JSON key "__proto__": not on that path.)
  const flat = body.customLimits === undefined && !Object.prototype.hasOwnProperty.call(body, '__proto__');
  const dto = flat ? Object.assign(Object.create(Dto.prototype) as object, body) : plainToInstance(Dto, body);
  const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  if (errors.length) return { ok: false, errors: toRejections(errors) };
  return { ok: true, event: { type: t, ...body } as InboundEvent };
}
