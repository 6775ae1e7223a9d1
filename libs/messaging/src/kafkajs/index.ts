export { createKafkaJsMessaging, toKafkaJsConfig, type KafkaJsMessagingOptions } from './messaging';
export type { MinimumLogLevel } from './logging';
export { fixKafkaJsIdleLoop, type IdleLoopFix } from './request-queue-fix';
