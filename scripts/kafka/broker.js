// @ts-check
'use strict';
// A real single-node Apache Kafka for local runs and tests.
//
//   KAFKA_BROKERS set          -> use it, start nothing                         (external.js)
//   a Docker engine answers    -> testcontainers @testcontainers/kafka (KRaft)  (docker.js)
//   otherwise                  -> the broker jars from Maven Central (cached outside the repo,
//                                 maven.js), run as a JVM on free loopback ports in a fresh
//                                 temp dir (jvm.js, jvm-config.js, processes.js)
//
// This file is the entry point and keeps the API every caller uses; broker.d.ts declares it, and
// `tsc -p scripts/kafka` checks these files against it. Plain CommonJS with JSDoc types so that
// node, jest's global setup and CI load them without a build. See README.md beside this file.

const { DEFAULT_KAFKA_VERSION, KafkaHarnessError, libsDirFor, runRoot } = require('./common');
const { dockerAvailable, dockerImageFor, startDockerBroker } = require('./docker');
const { externalBroker } = require('./external');
const { startJvmBroker } = require('./jvm');
const { ensureKafkaLibs } = require('./maven');
const { reapStale } = require('./processes');

/**
 * Starts (or finds) a single-node Kafka broker.
 * @param {import('./broker').StartBrokerOptions} [opts]
 * @returns {Promise<import('./broker').KafkaBroker>}
 */
async function startBroker(opts = {}) {
  const log = opts.log || (() => {});
  const external = opts.brokers || (opts.fresh ? undefined : process.env.KAFKA_BROKERS);
  if (external) return externalBroker(external, log);
  const mode = (opts.mode || process.env.KAFKA_HARNESS_MODE || 'auto').toLowerCase();
  if (!['auto', 'docker', 'jvm'].includes(mode)) {
    throw new KafkaHarnessError(`Kafka harness: KAFKA_HARNESS_MODE must be auto, docker or jvm, not "${mode}"`);
  }
  if (mode === 'docker' || (mode === 'auto' && (await dockerAvailable()))) {
    return startDockerBroker(opts, log);
  }
  return startJvmBroker(opts, log);
}

/** @type {typeof import('./broker')} the API declared in broker.d.ts (tsc checks this object against it) */
const api = {
  startBroker,
  ensureKafkaLibs,
  reapStale,
  libsDirFor,
  runRoot,
  dockerImageFor,
  DEFAULT_KAFKA_VERSION,
  KafkaHarnessError,
};
module.exports = api;
