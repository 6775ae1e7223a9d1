/**
 * The client's names for the contract types. Every shape here comes from the generated files
 * (OpenAPI for the HTTP answers, AsyncAPI for the Kafka payloads): nothing is copied by hand.
 */
import type { components } from './generated/openapi';
import type {
  BatchExportedV1,
  GenerationPerformedV1,
  Limits,
  PeriodResetEnvelope,
  Pool,
  SubscriptionChangedV1,
  ThresholdCrossedEnvelope,
} from './generated/asyncapi';

type Schemas = components['schemas'];

export type { BatchExportedV1, GenerationPerformedV1, Limits, PeriodResetEnvelope, Pool, SubscriptionChangedV1, ThresholdCrossedEnvelope };
export type { OutboundHeaders, PeriodResetData, ThresholdCrossedData } from './generated/asyncapi';

/** An instant: a Date, or an ISO-8601 string with a zone. */
export type InstantInput = Date | string;

/**
 * How an event gets its id. Give `eventId` if you have one; otherwise `sourceId`, your own stable
 * id for this fact (e.g. the generation job's id and the image index), and the client derives the
 * same eventId for it every time (see `eventIdFor`); with neither, the id is derived from the whole
 * payload (which must then be the same on a retry: take `occurredAt` once, when the work is done).
 */
export type EventIdentity = { eventId: string; sourceId?: never } | { sourceId: string; eventId?: never } | { eventId?: undefined; sourceId?: undefined };

export type GenerationInput = Omit<GenerationPerformedV1, 'eventId' | 'occurredAt'> & { occurredAt: InstantInput } & EventIdentity;
export type BatchExportInput = Omit<BatchExportedV1, 'eventId' | 'occurredAt'> & { occurredAt: InstantInput } & EventIdentity;
export type SubscriptionInput = Omit<SubscriptionChangedV1, 'eventId' | 'spaceId' | 'effectiveAt'> & {
  /** Defaults to now (taken once, so that retries send the same event). */
  effectiveAt?: InstantInput;
  eventId?: string;
};

/** The usage screen of a Space (GET /v1/spaces/:spaceId/usage). */
export type UsageView = Schemas['UsageViewDoc'];
export type PoolUsage = Schemas['PoolUsageDoc'];
/** The answer to "may this Space spend N credits on feature F / export N images?". */
export type EntitlementAnswer = Schemas['EntitlementAnswerDoc'];
export type EntitlementQuestion = { feature: string; generations?: number } | { batchImages: number; platform: string };
/** One event's outcome in POST /v1/events. */
export type EventOutcome = Schemas['OutcomeDoc'];
export type PostEventsAnswer = Schemas['PostEventsAnswerDoc'];
export type SubscriptionAnswer = Schemas['SubscriptionAnswerDoc'];
export type EventsPage = Schemas['EventsPageDoc'];
export type StoredEvent = Schemas['StoredEventDoc'];
export type NotificationsPage = Schemas['NotificationsPageDoc'];
export type ErrorBody = Schemas['ErrorDoc'];
export type ErrorItem = Schemas['ErrorItemDoc'];

/** What recordGeneration / recordBatchExport resolve with (a rejection or a conflict throws). */
export interface RecordResult {
  /** accepted: recorded now; duplicate: this eventId was recorded before (no effect); queued: published to Kafka by the service. */
  outcome: 'accepted' | 'duplicate' | 'queued';
  eventId: string;
  spaceId: string;
  /** accepted: the store position of what was recorded. */
  position?: string;
}
