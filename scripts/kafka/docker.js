// @ts-check
'use strict';
// The Docker broker: `@testcontainers/kafka` with a Confluent Platform image in KRaft mode, used
// when a Docker engine answers (or KAFKA_HARNESS_MODE=docker). Ryuk removes the container if the
// process dies. testcontainers is loaded only when this path is taken.

const { DEFAULT_PARTITIONS, DEFAULT_HEAP, DEFAULT_START_TIMEOUT_MS, KafkaHarnessError, kafkaVersion } = require('./common');
const { waitUntilReady } = require('./ready');

/** @typedef {import('./broker').StartBrokerOptions} StartBrokerOptions */
/** @typedef {import('./broker').KafkaBroker} KafkaBroker */

/**
 * Confluent Platform image whose Apache Kafka matches `version` (major.minor).
 * @param {string} version
 * @returns {string}
 */
function dockerImageFor(version) {
  if (process.env.KAFKA_DOCKER_IMAGE) return process.env.KAFKA_DOCKER_IMAGE;
  const [maj, min] = version.split('.').map(Number);
  // Confluent Platform 7.x = Kafka 3.(x-4)... 7.9 = 3.9; 8.0 = 4.0, 8.1 = 4.1, 8.2 = 4.2 ...
  if (maj === 3 && min >= 4) return `confluentinc/cp-kafka:7.${min}.0`;
  if (maj === 4) return `confluentinc/cp-kafka:8.${min}.0`;
  throw new KafkaHarnessError(`Kafka harness: no known cp-kafka image for Kafka ${version}; set KAFKA_DOCKER_IMAGE`);
}

/** @returns {Promise<boolean>} true when testcontainers finds a container runtime */
async function dockerAvailable() {
  try {
    const { getContainerRuntimeClient } = require('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {StartBrokerOptions} opts
 * @param {(message: string) => void} log
 * @returns {Promise<KafkaBroker>}
 */
async function startDockerBroker(opts, log) {
  const version = kafkaVersion(opts.version);
  const { KafkaContainer } = require('@testcontainers/kafka');
  const image = dockerImageFor(version);
  const partitions = opts.partitions || Number(process.env.KAFKA_NUM_PARTITIONS) || DEFAULT_PARTITIONS;
  const started = Date.now();
  let container = new KafkaContainer(image);
  if (!/:(8|9)\./.test(image)) container = container.withKraft();
  container = container.withEnvironment({
    KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    KAFKA_NUM_PARTITIONS: String(partitions),
    KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '1000',
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
    KAFKA_HEAP_OPTS: `-Xmx${opts.heap || process.env.KAFKA_HEAP || DEFAULT_HEAP}`,
  });
  const started_ = await container.start();
  /** @param {import('@testcontainers/kafka').StartedKafkaContainer} c */
  const brokersOf = (c) => `${c.getHost()}:${c.getMappedPort(9093)}`;
  const brokers = brokersOf(started_);
  await waitUntilReady(brokers, { timeoutMs: opts.startTimeoutMs || DEFAULT_START_TIMEOUT_MS, failed: () => null });
  const startupMs = Date.now() - started;
  log(`Kafka ${version} (${image}) ready at ${brokers} in ${startupMs} ms`);
  let stopped = false;
  return {
    mode: 'docker',
    version,
    brokers,
    startupMs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await started_.stop();
    },
    async restart() {
      await started_.restart();
      const now = brokersOf(started_);
      if (now !== brokers) {
        throw new KafkaHarnessError(`Kafka harness: the container came back on ${now} instead of ${brokers}; restart() needs stable ports`);
      }
      await waitUntilReady(brokers, { timeoutMs: opts.startTimeoutMs || DEFAULT_START_TIMEOUT_MS, failed: () => null });
    },
  };
}

module.exports = { dockerImageFor, dockerAvailable, startDockerBroker };
