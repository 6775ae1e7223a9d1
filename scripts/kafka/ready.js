// @ts-check
'use strict';
// Readiness of a broker (JVM or container): polled with kafkajs metadata requests, never a fixed
// sleep, then a warm-up so the first test does not meet "coordinator is loading" answers.

const { KafkaHarnessError, sleep } = require('./common');

/**
 * Waits until the coordinators the tests need have loaded, so that the first consumer group and
 * the first idempotent producer of a run do not meet "coordinator is loading" answers: a group
 * lookup creates and loads __consumer_offsets, and an idempotent producer gets a producer id.
 * @param {import('kafkajs').Kafka} kafka
 * @param {number} deadline epoch ms
 */
async function warmUp(kafka, deadline) {
  for (;;) {
    const admin = kafka.admin({ retry: { retries: 0 } });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 2, initialRetryTime: 50 } });
    try {
      await admin.connect();
      await admin.describeCluster(); // loads the broker list describeGroups needs
      await admin.describeGroups(['metering-kafka-harness-warm-up']);
      await producer.connect();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    } finally {
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
    await sleep(50);
  }
}

/**
 * Polls the broker with a kafkajs admin metadata request until it answers with itself as a live
 * broker and an elected controller. `failed()` returns an error message to stop early.
 * @param {string} brokers `host:port[,host:port]`
 * @param {{ timeoutMs: number; failed: () => string | null }} opts
 */
async function waitUntilReady(brokers, { timeoutMs, failed }) {
  const { Kafka, logLevel } = require('kafkajs');
  const kafka = new Kafka({
    clientId: 'metering-kafka-harness',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer yet';
  while (Date.now() < deadline) {
    const stop = failed();
    if (stop) throw new KafkaHarnessError(stop);
    const admin = kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0 && cluster.controller != null && cluster.controller >= 0) {
        await warmUp(kafka, deadline);
        return cluster;
      }
      lastError = `metadata without a controller yet: ${JSON.stringify(cluster)}`;
    } catch (err) {
      const e = /** @type {{ message?: unknown } | null | undefined} */ (err);
      lastError = e && e.message ? String(e.message) : String(err);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await sleep(100);
  }
  throw new KafkaHarnessError(`Kafka harness: broker at ${brokers} not ready after ${timeoutMs} ms (last error: ${lastError})`);
}

module.exports = { waitUntilReady };
