/**
 * What /health/ready asks of the Kafka side without importing it (the HTTP layer never imports the
 * Kafka folder): counts since start and a probe of the cluster. The Kafka module provides both, or
 * null when Kafka is off.
 */
export const KAFKA_STATS = Symbol('KAFKA_STATS');
/** Answers whether the Kafka cluster can be reached (null when Kafka is off). */
export const KAFKA_PROBE = Symbol('KAFKA_PROBE');
export type KafkaProbe = () => Promise<Record<string, unknown>>;
