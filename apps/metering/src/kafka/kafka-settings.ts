/**
 * Kafka settings of the service, from the environment. Kafka is on when KAFKA_BROKERS is set.
 */
import { INBOUND_TOPICS, type InboundType, OUTBOUND_TOPICS } from '@metering/domain';
import { type KafkaConnectionConfig, MessagingConfigError, kafkaConfigFromEnv } from '@metering/messaging';

export interface KafkaSettings {
  connection: KafkaConnectionConfig;
  groupId: string;
  partitions: number;
  /** Group session timeout: how long a dead member holds its partitions. */
  sessionTimeoutMs: number;
  replicationFactor: number | undefined;
  /**
   * Longest a usage batch waits for the group to have no lag on the subscription topic (the
   * best-effort order across topics: subscriptions-first.ts); 0 turns it off.
   */
  subscriptionsFirstMs: number;
  topics: {
    generationPerformed: string;
    batchExported: string;
    subscriptionChanged: string;
    thresholdCrossed: string;
    periodReset: string;
    deadLetter: string;
  };
}

export function inboundTopicOf(settings: KafkaSettings, type: InboundType): string {
  switch (type) {
    case 'generation-performed':
      return settings.topics.generationPerformed;
    case 'batch-exported':
      return settings.topics.batchExported;
    case 'subscription-changed':
      return settings.topics.subscriptionChanged;
  }
}

export function inboundTypeOfTopic(settings: KafkaSettings, topic: string): InboundType | null {
  if (topic === settings.topics.generationPerformed) return 'generation-performed';
  if (topic === settings.topics.batchExported) return 'batch-exported';
  if (topic === settings.topics.subscriptionChanged) return 'subscription-changed';
  return null;
}

const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/** null when KAFKA_BROKERS is not set. Throws a list of problems otherwise. */
export function kafkaSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaSettings | null {
  if (!env.KAFKA_BROKERS || env.KAFKA_BROKERS.trim() === '') return null;
  const problems: string[] = [];
  let connection: KafkaConnectionConfig | undefined;
  try {
    connection = kafkaConfigFromEnv(env, { defaultClientId: 'metering' });
  } catch (err) {
    if (err instanceof MessagingConfigError) problems.push(...err.problems);
    else throw err;
  }
  const topic = (name: string, def: string) => {
    const v = env[name]?.trim() || def;
    if (!TOPIC.test(v)) problems.push(`${name}="${v}": a topic name is 1-249 of letters, digits, . _ -`);
    return v;
  };
  const int = (name: string, def: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) problems.push(`${name}="${raw}": must be an integer from ${min} to ${max}`);
    return n;
  };
  const settings = {
    groupId: env.KAFKA_GROUP_ID?.trim() || 'metering-ingest',
    partitions: int('KAFKA_TOPIC_PARTITIONS', 4, 1, 1000),
    sessionTimeoutMs: int('KAFKA_SESSION_TIMEOUT_MS', 30_000, 6_000, 300_000),
    replicationFactor: env.KAFKA_REPLICATION_FACTOR ? int('KAFKA_REPLICATION_FACTOR', 1, 1, 10) : undefined,
    subscriptionsFirstMs: int('KAFKA_SUBSCRIPTIONS_FIRST_MS', 5000, 0, 600_000),
    topics: {
      generationPerformed: topic('KAFKA_TOPIC_GENERATION_PERFORMED', INBOUND_TOPICS.generationPerformed),
      batchExported: topic('KAFKA_TOPIC_BATCH_EXPORTED', INBOUND_TOPICS.batchExported),
      subscriptionChanged: topic('KAFKA_TOPIC_SUBSCRIPTION_CHANGED', INBOUND_TOPICS.subscriptionChanged),
      thresholdCrossed: topic('KAFKA_TOPIC_THRESHOLD_CROSSED', OUTBOUND_TOPICS.thresholdCrossed),
      periodReset: topic('KAFKA_TOPIC_PERIOD_RESET', OUTBOUND_TOPICS.periodReset),
      deadLetter: topic('KAFKA_TOPIC_DEAD_LETTER', OUTBOUND_TOPICS.deadLetter),
    },
  };
  if (problems.length) throw new MessagingConfigError(problems);
  return { connection: connection!, ...settings };
}
