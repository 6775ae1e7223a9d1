export { MeteringClient, type MeteringClientOptions } from './http-client';
export {
  DEFAULT_TOPICS,
  EVENT_ID_HEADER,
  KafkaUsagePublisher,
  NotificationConsumer,
  type ConsumerLike,
  type KafkaLike,
  type KafkaSource,
  type KafkaUsagePublisherOptions,
  type NotificationConsumerOptions,
  type NotificationHandlers,
  type NotificationMeta,
  type NotificationTopics,
  type ProducerLike,
  type UsageTopics,
} from './kafka';
export { canonicalJson, deriveEventId, eventIdFor, METERING_NAMESPACE } from './event-id';
export { batchExportPayload, generationPayload, subscriptionPayload } from './payloads';
export {
  CONFLICT_RULES,
  MeteringConflictError,
  MeteringError,
  MeteringRejectedError,
  MeteringUnauthorizedError,
  MeteringUnavailableError,
} from './errors';
export { CHANNELS } from './generated/asyncapi';
export type * from './types';
export type { components as OpenApiComponents, paths as OpenApiPaths } from './generated/openapi';
