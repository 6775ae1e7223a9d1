import { Kafka, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { KafkaConnectionConfig } from '../config';
import type { Messaging, MessagingLogger } from '../port';
import { consumerLagWith, ensureTopicsWith } from './admin';
import { KafkaJsBatchConsumer } from './batch-consumer';
import { filtered, kafkaJsLogCreator, stderrErrorLogger, toKafkaJsLevel, type MinimumLogLevel } from './logging';
import { KafkaJsProducer } from './producer';
import { fixKafkaJsIdleLoop } from './request-queue-fix';

export interface KafkaJsMessagingOptions {
  /** Receives this library's and kafkajs' log lines. Default: errors only, as JSON on stderr. */
  logger?: MessagingLogger;
  /** Lowest level passed on. Default 'info' with a logger, 'error' without. */
  logLevel?: MinimumLogLevel;
}

/** The Messaging port on kafkajs. One instance per service; producers and consumers share it. */
export function createKafkaJsMessaging(config: KafkaConnectionConfig, options: KafkaJsMessagingOptions = {}): Messaging {
  const minimum: MinimumLogLevel = options.logLevel ?? (options.logger ? 'info' : 'error');
  const log = filtered(options.logger ?? stderrErrorLogger, minimum);
  const requestTimeoutMs = config.requestTimeoutMs ?? 30_000;
  // kafkajs 2.2.4's request queue would wake every idle connection each millisecond (request-queue-fix.ts).
  const fix = fixKafkaJsIdleLoop();
  if (!fix.applied)
    log({ level: 'warn', message: `kafkajs idle-loop fix not applied (${fix.reason}): idle connections may wake every millisecond`, source: 'messaging', fields: {} });
  const kafka = new Kafka(toKafkaJsConfig(config, minimum, log));
  return {
    producer: () => new KafkaJsProducer(kafka, log, requestTimeoutMs),
    batchConsumer: (consumerOptions) => new KafkaJsBatchConsumer(kafka, consumerOptions, log),
    ensureTopics: (topics) => ensureTopicsWith(kafka, topics, log),
    consumerLag: (groupId, topics) => consumerLagWith(kafka, groupId, topics),
  };
}

export function toKafkaJsConfig(config: KafkaConnectionConfig, minimum: MinimumLogLevel, log: MessagingLogger): KafkaConfig {
  if (config.brokers.length === 0) throw new Error('Kafka: no brokers configured');
  const kafkaConfig: KafkaConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeoutMs ?? 3_000,
    requestTimeout: config.requestTimeoutMs ?? 30_000,
    logLevel: toKafkaJsLevel(minimum),
    logCreator: kafkaJsLogCreator(log),
  };
  if (config.ssl !== undefined && config.ssl !== false) {
    kafkaConfig.ssl = config.ssl === true ? true : { ...config.ssl };
  }
  if (config.sasl) {
    const { mechanism, username, password } = config.sasl;
    kafkaConfig.sasl = { mechanism, username, password } as SASLOptions;
  }
  return kafkaConfig;
}
