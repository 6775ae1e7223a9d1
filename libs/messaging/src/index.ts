export * from './port';
export * from './config';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff';
export { createKafkaJsMessaging, fixKafkaJsIdleLoop, type IdleLoopFix, type KafkaJsMessagingOptions, type MinimumLogLevel } from './kafkajs';
