// @ts-check
'use strict';
// An external broker (KAFKA_BROKERS, or `brokers` given to startBroker): used as is; nothing is
// started, stopped or restarted.

const { KafkaHarnessError } = require('./common');

/**
 * @param {string} brokers `host:port[,host:port]`
 * @param {(message: string) => void} log
 * @returns {import('./broker').KafkaBroker}
 */
function externalBroker(brokers, log) {
  log(`using the broker(s) at ${brokers} (KAFKA_BROKERS); starting nothing`);
  return {
    mode: 'external',
    version: 'external',
    brokers,
    startupMs: 0,
    async stop() {},
    async restart() {
      throw new KafkaHarnessError('Kafka harness: cannot restart a broker it did not start (KAFKA_BROKERS is set)');
    },
  };
}

module.exports = { externalBroker };
