export { createKafkaJsMessaging, toKafkaJsConfig, type KafkaJsMessagingOptions } from './messaging';
export type { MinimumLogLevel } from './logging';
