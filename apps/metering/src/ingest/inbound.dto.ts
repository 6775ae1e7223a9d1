/**
 * Structural validation of the inbound contracts (class-validator), shared by the HTTP API and the
 * Kafka consumer. Each problem names the field and the rule; the domain then checks the rules that
 * need the catalog (feature known, plan/cycle pair exists, per-batch cap).
 */
import 'reflect-metadata';
import { plainToInstance, Type } from 'class-transformer';
import {
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
  ValidateBy,
  ValidateNested,
  type ValidationError,
  type ValidationOptions,
  validateSync,
} from 'class-validator';
import { CYCLES, type InboundEvent, type InboundType, MEDIA, PLANS, type Rejection, parseInstant } from '@metering/domain';

// ---- limits (SECURITY.md lists them; each rejection names the field and the rule) -----------

/** Longest eventId and spaceId, everywhere: event bodies, Kafka messages and URL paths. */
export const MAX_ID_LENGTH = 128;
/** Longest userId and batchId. */
export const MAX_TEXT_LENGTH = 128;
/** Deepest nesting inside one event: the event object holds customLimits, which holds numbers. */
export const MAX_EVENT_DEPTH = 2;
/** Largest custom limit of an enterprise Space (fits every store's integer column). */
export const MAX_CUSTOM_LIMIT = 1_000_000_000_000;
/** Earliest instant an event may carry (occurredAt, effectiveAt): rule `min_instant`. */
export const MIN_INSTANT_ISO = '2000-01-01T00:00:00Z';
export const MIN_INSTANT = Date.parse(MIN_INSTANT_ISO);

const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
const ID_MSG = 'letters, digits and . _ : @ - only';
/** Free text (userId, batchId, feature, platform): no control characters, no lone surrogates. */
const TEXT = /^[^\p{Cc}\p{Cs}]*$/u;
const TEXT_MSG = (field: string) => `${field} must not contain control characters or unpaired surrogates`;

/** Keys that name a property of every object: never a field, whatever the contract. */
export function isPrototypeKey(key: string): boolean {
  return key === '__proto__' || key === 'prototype' || key in Object.prototype;
}

/** class-validator rule `min_instant`: not before MIN_INSTANT_ISO. */
function NotBeforeMinInstant(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'min_instant',
      validator: {
        validate: (v: unknown) => typeof v !== 'string' || !(Date.parse(v) < MIN_INSTANT),
        defaultMessage: (a) => `${a?.property ?? 'instant'} must not be before ${MIN_INSTANT_ISO}`,
      },
    },
    options,
  );
}

class InboundBase {
  @IsString() @IsNotEmpty() @MaxLength(MAX_ID_LENGTH) @Matches(ID, { message: `eventId: ${ID_MSG}` })
  eventId!: string;

  @IsString() @IsNotEmpty() @MaxLength(MAX_ID_LENGTH) @Matches(ID, { message: `spaceId: ${ID_MSG}` })
  spaceId!: string;
}

export class GenerationPerformedDto extends InboundBase {
  @IsString() @IsNotEmpty() @MaxLength(MAX_TEXT_LENGTH) @Matches(TEXT, { message: TEXT_MSG('userId') })
  userId!: string;

  @IsString() @IsNotEmpty() @MaxLength(64) @Matches(TEXT, { message: TEXT_MSG('feature') })
  feature!: string;

  @IsIn([...MEDIA])
  medium!: 'image' | 'video';

  @IsInt() @Min(1) @Max(10_000)
  generations!: number;

  @IsISO8601({ strict: true, strictSeparator: true }) @Matches(/(Z|[+-]\d{2}:\d{2})$/, { message: 'occurredAt must carry a zone (Z or +hh:mm)' }) @NotBeforeMinInstant()
  occurredAt!: string;

  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(MAX_TEXT_LENGTH) @Matches(TEXT, { message: TEXT_MSG('batchId') })
  batchId?: string;

  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(32) @Matches(TEXT, { message: TEXT_MSG('platform') })
  platform?: string;
}

export class BatchExportedDto extends InboundBase {
  @IsString() @IsNotEmpty() @MaxLength(MAX_TEXT_LENGTH) @Matches(TEXT, { message: TEXT_MSG('userId') })
  userId!: string;

  @IsString() @IsNotEmpty() @MaxLength(MAX_TEXT_LENGTH) @Matches(TEXT, { message: TEXT_MSG('batchId') })
  batchId!: string;

  @IsInt() @Min(1) @Max(100_000)
  images!: number;

  @IsString() @IsNotEmpty() @MaxLength(32) @Matches(TEXT, { message: TEXT_MSG('platform') })
  platform!: string;

  @IsISO8601({ strict: true, strictSeparator: true }) @Matches(/(Z|[+-]\d{2}:\d{2})$/, { message: 'occurredAt must carry a zone (Z or +hh:mm)' }) @NotBeforeMinInstant()
  occurredAt!: string;
}

export class LimitsDto {
  @IsInt() @Min(0) @Max(MAX_CUSTOM_LIMIT) ai_image_credits!: number;
  @IsInt() @Min(0) @Max(MAX_CUSTOM_LIMIT) ai_video_credits!: number;
  @IsInt() @Min(0) @Max(MAX_CUSTOM_LIMIT) batch_exports!: number;
}

export class SubscriptionChangedDto extends InboundBase {
  @IsIn([...PLANS])
  plan!: (typeof PLANS)[number];

  @IsIn([...CYCLES])
  cycle!: (typeof CYCLES)[number];

  @IsISO8601({ strict: true, strictSeparator: true }) @Matches(/(Z|[+-]\d{2}:\d{2})$/, { message: 'effectiveAt must carry a zone (Z or +hh:mm)' }) @NotBeforeMinInstant()
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
    const field = prefix ? `${prefix}.${safeField(e.property)}` : safeField(e.property);
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
  return m !== null && parseInstant(v) >= MIN_INSTANT; // the domain's rule (impossible dates are NaN)
}
const isText = (v: unknown, max: number): boolean => typeof v === 'string' && v.length > 0 && v.length <= max && TEXT.test(v);
const isId = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH && ID.test(v);
const isIntIn = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const FAST_KEYS: Partial<Record<InboundType, Set<string>>> = {
  'generation-performed': new Set(['eventId', 'spaceId', 'userId', 'feature', 'medium', 'generations', 'occurredAt', 'batchId', 'platform']),
  'batch-exported': new Set(['eventId', 'spaceId', 'userId', 'batchId', 'images', 'platform', 'occurredAt']),
  // Without customLimits only (an enterprise Space's limits are nested: class-validator checks them).
  'subscription-changed': new Set(['eventId', 'spaceId', 'plan', 'cycle', 'effectiveAt']),
};

/** True only when class-validator would accept the body (false means: ask class-validator). */
export function certainlyValid(body: Record<string, unknown>, type: InboundType): boolean {
  const keys = Object.prototype.hasOwnProperty.call(FAST_KEYS, type) ? FAST_KEYS[type] : undefined;
  if (!keys) return false;
  for (const k in body) if (!keys.has(k) || !Object.prototype.hasOwnProperty.call(body, k)) return false;
  if (Object.getPrototypeOf(body) !== Object.prototype) return false;
  if (!isId(body.eventId) || !isId(body.spaceId)) return false;
  if (type === 'subscription-changed')
    return (PLANS as readonly unknown[]).includes(body.plan) && (CYCLES as readonly unknown[]).includes(body.cycle) && isStrictInstant(body.effectiveAt);
  if (!isText(body.userId, 128) || !isStrictInstant(body.occurredAt)) return false;
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

/** Rejections for what no contract allows anywhere in an event: prototype-named keys, nesting deeper than MAX_EVENT_DEPTH. */
export function structuralRejections(body: Record<string, unknown>): Rejection[] {
  const out: Rejection[] = [];
  // Iterative walk: a hostile body may nest thousands of levels (recursion would overflow the stack).
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: body, path: '', depth: 0 }];
  while (stack.length && out.length < 10) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_EVENT_DEPTH) {
      out.push({ field: path, rule: 'max_depth', message: `${safeField(path)} nests deeper than an event may (at most ${MAX_EVENT_DEPTH} levels)` });
      continue;
    }
    for (const k of Object.keys(value)) {
      const field = path ? `${path}.${safeField(k)}` : safeField(k);
      if (isPrototypeKey(k)) out.push({ field, rule: 'unknown_field', message: `property ${field} should not exist` });
      else stack.push({ value: (value as Record<string, unknown>)[k], path: field, depth: depth + 1 });
    }
  }
  return out;
}

/**
 * An id taken from input that failed validation, for answers and log lines: the value when it is an
 * id-sized string (escaped), otherwise undefined. Never converts the value, so an object with an odd
 * `toString` cannot throw here.
 */
export function echoableId(value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= MAX_ID_LENGTH ? safeField(value) : undefined;
}

/** A field name from input, safe to echo in answers, logs and terminals: control characters and odd code points escaped, at most 80 characters. */
export function safeField(name: string): string {
  const escaped = name.replace(/[\p{Cc}\p{Cs}\p{Cf}\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > 80 ? `${escaped.slice(0, 77)}...` : escaped;
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/**
 * Validates one inbound event. `type` comes from the body (HTTP) or from the topic (Kafka).
 * Unknown fields are refused so typos do not pass silently. Never throws: whatever the input, the
 * answer is the event or rejections naming field and rule.
 */
export function parseInbound(raw: unknown, type?: InboundType): ParsedInbound {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, errors: [{ field: '', rule: 'object', message: 'each event must be a JSON object' }] };
  try {
    return parseObject(raw as Record<string, unknown>, type);
  } catch (err) {
    // Defence in depth: a validator that throws must not fail a request or a Kafka batch.
    return { ok: false, errors: [{ field: '', rule: 'unprocessable', message: `the event could not be validated: ${safeField(String((err as Error)?.message ?? err))}` }] };
  }
}

function parseObject(raw: Record<string, unknown>, type?: InboundType): ParsedInbound {
  const body = { ...raw };
  const t = type ?? body.type;
  delete body.type;
  // Own names only: "toString", "constructor", "__proto__" are on every object's prototype.
  if (typeof t !== 'string' || !hasOwn(INBOUND_DTOS, t))
    return { ok: false, errors: [{ field: 'type', rule: 'isIn', message: `type must be one of ${INBOUND_TYPES.join(', ')}` }] };
  if (certainlyValid(body, t as InboundType)) return { ok: true, event: { type: t, ...body } as InboundEvent };
  const structural = structuralRejections(body);
  if (structural.length) return { ok: false, errors: structural };
  // Only customLimits is nested (it needs class-transformer to become a LimitsDto); a flat body
  // only needs the DTO's prototype for class-validator to find its rules, which is much cheaper.
  const Dto = INBOUND_DTOS[t as InboundType];
  const flat = body.customLimits === undefined;
  const dto = flat ? Object.assign(Object.create(Dto.prototype) as object, body) : plainToInstance(Dto, body);
  const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  if (errors.length) return { ok: false, errors: toRejections(errors) };
  return { ok: true, event: { type: t, ...body } as InboundEvent };
}
