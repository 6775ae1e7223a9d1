'use strict';
// jest globalTeardown: stops the broker jest-global-setup.js started (nothing if it reused
// KAFKA_BROKERS). If jest dies before this runs, the harness watchdog stops the JVM, and the
// next start reaps whatever is left.

module.exports = async function kafkaGlobalTeardown() {
  const state = globalThis.__METERING_KAFKA__;
  if (!state) return;
  globalThis.__METERING_KAFKA__ = undefined;
  try {
    await state.broker.stop();
  } finally {
    if (state.previous === undefined) delete process.env.KAFKA_BROKERS;
    else process.env.KAFKA_BROKERS = state.previous;
  }
};
