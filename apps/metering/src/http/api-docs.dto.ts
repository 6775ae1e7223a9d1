/**
 * OpenAPI shapes of the /v1 bodies. Documentation only: requests are validated by the inbound
 * contracts (ingest/inbound.dto.ts) and the domain, which answer with field and rule.
 */
import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { CYCLES, PLANS, POOLS } from '@metering/domain';

export class ErrorItemDoc {
  @ApiProperty({ example: 'cycle' }) field!: string;
  @ApiProperty({ example: 'plan_cycle_exists' }) rule!: string;
  @ApiProperty({ example: 'plan ultra has no weekly cycle (catalog version 1)' }) message!: string;
}

export class ErrorDoc {
  @ApiProperty({ example: 'rejected', description: 'bad_request, rejected, payload_too_large, unauthorized, forbidden, ...' }) error!: string;
  @ApiPropertyOptional({ type: [ErrorItemDoc] }) errors?: ErrorItemDoc[];
  @ApiPropertyOptional({ description: 'for 401/403: what to send' }) message?: string;
  @ApiPropertyOptional({ enum: ['read', 'ingest', 'admin'] }) requiredScope?: string;
}

export class GenerationPerformedDoc {
  @ApiProperty({ enum: ['generation-performed'] }) type!: string;
  @ApiProperty({ example: '5b0e6c1e-1' }) eventId!: string;
  @ApiProperty({ example: 'acme' }) spaceId!: string;
  @ApiProperty({ example: 'ann' }) userId!: string;
  @ApiProperty({ example: 'ai_backgrounds', description: 'feature id from the catalog' }) feature!: string;
  @ApiProperty({ enum: ['image', 'video'] }) medium!: string;
  @ApiProperty({ minimum: 1, maximum: 10000, example: 2 }) generations!: number;
  @ApiProperty({ format: 'date-time', example: '2026-11-23T10:00:00Z' }) occurredAt!: string;
  @ApiPropertyOptional() batchId?: string;
  @ApiPropertyOptional({ example: 'web' }) platform?: string;
}

export class BatchExportedDoc {
  @ApiProperty({ enum: ['batch-exported'] }) type!: string;
  @ApiProperty() eventId!: string;
  @ApiProperty() spaceId!: string;
  @ApiProperty() userId!: string;
  @ApiProperty() batchId!: string;
  @ApiProperty({ minimum: 1, example: 100 }) images!: number;
  @ApiProperty({ example: 'web', description: 'web, desktop, mobile, ios, android' }) platform!: string;
  @ApiProperty({ format: 'date-time' }) occurredAt!: string;
}

export class SubscriptionChangedDoc {
  @ApiProperty({ enum: ['subscription-changed'] }) type!: string;
  @ApiProperty() eventId!: string;
  @ApiProperty() spaceId!: string;
  @ApiProperty({ enum: [...PLANS] }) plan!: string;
  @ApiProperty({ enum: [...CYCLES] }) cycle!: string;
  @ApiProperty({ format: 'date-time', description: 'The renewal anchor: monthly and yearly plans renew on its day of month and time of day, taken in UTC; weekly plans every 7 days from it.' }) effectiveAt!: string;
  @ApiPropertyOptional({ description: 'enterprise: {ai_image_credits, ai_video_credits, batch_exports}' }) customLimits?: Record<string, number>;
}

export const INBOUND_EVENT_SCHEMA = {
  oneOf: [
    { $ref: getSchemaPath(GenerationPerformedDoc) },
    { $ref: getSchemaPath(BatchExportedDoc) },
    { $ref: getSchemaPath(SubscriptionChangedDoc) },
  ],
};

export const POST_EVENTS_BODY = {
  oneOf: [INBOUND_EVENT_SCHEMA, { type: 'array', maxItems: 10000, items: INBOUND_EVENT_SCHEMA }],
};

export class SubscriptionBodyDoc {
  @ApiProperty({ enum: [...PLANS], example: 'pro' }) plan!: string;
  @ApiProperty({ enum: [...CYCLES], example: 'monthly' }) cycle!: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'default: now. The renewal anchor: monthly and yearly plans renew on its day of month and time of day, taken in UTC; weekly plans every 7 days from it.' }) effectiveAt?: string;
  @ApiPropertyOptional() customLimits?: Record<string, number>;
  @ApiPropertyOptional({ description: 'default: a random id. Deduplicated per Space: the same id with the same payload is a duplicate, with another payload a 409 conflict' }) eventId?: string;
}

export class EntitlementAnswerDoc {
  @ApiProperty() spaceId!: string;
  @ApiProperty() allowed!: boolean;
  @ApiProperty({ enum: [...POOLS], example: 'ai_image_credits' }) pool!: string;
  @ApiProperty() cost!: number;
  @ApiProperty() used!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() remaining!: number;
  @ApiProperty({ enum: ['within_limit', 'free_feature', 'limit_reached', 'insufficient_remaining', 'per_batch_cap'] }) reason!: string;
  @ApiProperty() message!: string;
  @ApiProperty() catalogVersion!: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) periodEnd!: string | null;
  @ApiProperty({
    format: 'date-time',
    description:
      'freshness: every usage event whose append the store acknowledged before this instant (from any process) is counted. The answer comes from an in-memory view that reads the store every ENTITLEMENT_VIEW_POLL_MS (default 100 ms), so asOf trails the request by at most that plus one read while the store answers; appends of the answering process itself are always counted.',
  })
  asOf!: string;
}
