'use strict';
// jest globalSetup: one Kafka broker per test run, handed to the test workers via
// process.env.KAFKA_BROKERS (workers inherit the env of the main process). An existing
// KAFKA_BROKERS is honoured: then nothing is started. Pair: jest-global-teardown.js.

const { startBroker } = require('./broker');

const verbose = () => process.env.KAFKA_HARNESS_VERBOSE === '1';
const log = (message) => {
  if (verbose()) process.stderr.write(`[kafka] ${message}\n`);
};

// kafkajs 2.2.4 sets a negative timer on every response; Node >= 23 warns about it once per
// process. Harmless (clamped to 1 ms): keep it out of the test output of the workers.
function silenceKafkajsTimerWarning() {
  const flag = '--disable-warning=TimeoutNegativeWarning';
  const current = process.env.NODE_OPTIONS || '';
  if (!current.includes(flag)) process.env.NODE_OPTIONS = `${current} ${flag}`.trim();
}

module.exports = async function kafkaGlobalSetup() {
  if (globalThis.__METERING_KAFKA__) return; // two projects wired to the same setup
  silenceKafkajsTimerWarning();
  const started = Date.now();
  const broker = await startBroker({ log });
  globalThis.__METERING_KAFKA__ = { broker, previous: process.env.KAFKA_BROKERS };
  process.env.KAFKA_BROKERS = broker.brokers;
  if (broker.mode !== 'external') {
    process.env.KAFKA_BROKER_VERSION = broker.version;
    const line = `[kafka] ${broker.mode} broker ${broker.version} at ${broker.brokers} ready in ${Date.now() - started} ms`;
    if (verbose() || process.env.CI) process.stderr.write(`\n${line}\n`);
  }
};
