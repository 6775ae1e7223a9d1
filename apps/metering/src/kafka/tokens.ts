/** DI tokens of the Kafka feature. */

/** The Kafka runtime (KafkaRuntime), or null when Kafka is off. */
export const KAFKA_RUNTIME = Symbol('KAFKA_RUNTIME');
