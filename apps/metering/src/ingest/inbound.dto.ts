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
import { CYCLES, type InboundEvent, type InboundType, MEDIA, PLANS, type Rejection } from '@metering/domain';

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
