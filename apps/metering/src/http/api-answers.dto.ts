/**
 * OpenAPI shapes of the /v1 answers (documentation only; the controllers return the domain's
 * values). packages/client generates its answer types from these (`npm run client:generate`), and
 * its tests against the running service check that the answers have these shapes.
 */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { CYCLES, PLANS } from '@metering/domain';
import { ErrorItemDoc } from './api-docs.dto';

export class PoolUsageDoc {
  @ApiProperty({ example: 100 }) used!: number;
  @ApiProperty({ example: 125 }) limit!: number;
  @ApiProperty({ example: 25 }) remaining!: number;
  @ApiProperty({ example: 80, description: 'used / limit in percent (2 decimals); over 100 when over the limit' }) percent!: number;
  @ApiProperty() over!: boolean;
}

export class PoolsDoc {
  @ApiProperty({ type: PoolUsageDoc }) ai_image_credits!: PoolUsageDoc;
  @ApiProperty({ type: PoolUsageDoc }) ai_video_credits!: PoolUsageDoc;
  @ApiProperty({ type: PoolUsageDoc }) batch_exports!: PoolUsageDoc;
}

export class UsageViewDoc {
  @ApiProperty({ example: 'acme' }) spaceId!: string;
  @ApiProperty({ enum: [...PLANS] }) plan!: string;
  @ApiProperty({ enum: [...CYCLES] }) cycle!: string;
  @ApiProperty({ format: 'date-time' }) periodStart!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'null for free (never resets)' }) periodEnd!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'null for free (never resets)' }) nextResetAt!: string | null;
  @ApiProperty({ type: PoolsDoc }) pools!: PoolsDoc;
  @ApiProperty({ format: 'date-time' }) asOf!: string;
}

export class OutcomeDoc {
  @ApiProperty({ description: 'the index of the event in the request' }) index!: number;
  @ApiProperty({ enum: ['accepted', 'duplicate', 'conflict', 'rejected', 'queued'], description: 'conflict: the eventId was recorded with another payload (rule event_id_conflict)' }) outcome!: string;
  @ApiPropertyOptional() eventId?: string;
  @ApiPropertyOptional() spaceId?: string;
  @ApiPropertyOptional({ description: 'accepted: the store position of the last event recorded' }) position?: string;
  @ApiPropertyOptional({ type: [String], description: 'accepted: the types of the events recorded' }) recorded?: string[];
  @ApiPropertyOptional({ type: [ErrorItemDoc], description: 'rejected or conflict: every field and rule' }) errors?: ErrorItemDoc[];
}

export class PostEventsAnswerDoc {
  @ApiPropertyOptional({ description: 'embedded' }) accepted?: number;
  @ApiPropertyOptional({ description: 'embedded' }) duplicates?: number;
  @ApiPropertyOptional({ description: 'embedded: eventIds recorded with another payload (one event alone: HTTP 409)' }) conflicts?: number;
  @ApiPropertyOptional({ description: 'with Kafka' }) queued?: number;
  @ApiProperty() rejected!: number;
  @ApiProperty({ type: [OutcomeDoc] }) results!: OutcomeDoc[];
}

export class SubscriptionAnswerDoc {
  @ApiProperty({ enum: ['accepted', 'duplicate'] }) outcome!: string;
  @ApiPropertyOptional() eventId?: string;
  @ApiProperty() spaceId!: string;
  @ApiPropertyOptional() position?: string;
  @ApiPropertyOptional({ type: [String] }) recorded?: string[];
  @ApiProperty({ type: UsageViewDoc }) usage!: UsageViewDoc;
}

export class StoredEventDoc {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'UsageRecorded' }) type!: string;
  @ApiProperty({ example: 'space-acme' }) stream!: string;
  @ApiProperty() revision!: number;
  @ApiProperty({ description: 'global position (a 64-bit decimal string)' }) position!: string;
  @ApiProperty({ format: 'date-time' }) recordedAt!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: "the event's data (by type)" }) data!: Record<string, unknown>;
}

export class EventsPageDoc {
  @ApiProperty() spaceId!: string;
  @ApiProperty() stream!: string;
  @ApiProperty({ type: [StoredEventDoc] }) events!: StoredEventDoc[];
  @ApiProperty({ type: Number, nullable: true, description: 'fromRevision of the next page; null at the end' }) nextRevision!: number | null;
}

export class NotificationsPageDoc {
  @ApiProperty({ type: [StoredEventDoc] }) notifications!: StoredEventDoc[];
  @ApiProperty({ description: 'the `since` of the next page' }) next!: string;
}
