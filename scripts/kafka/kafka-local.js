#!/usr/bin/env node
'use strict';
// `npm run kafka:local`: starts a single-node Kafka (see broker.js), prints exactly one line
// `KAFKA_BROKERS=host:port` on stdout once it is ready, and stops it on Ctrl-C / SIGTERM.
// Progress and errors go to stderr, so the one stdout line can be read by a script.

const { startBroker } = require('./broker');

const log = (message) => process.stderr.write(`[kafka:local] ${message}\n`);

let broker = null;
let signalled = null;
let stopping = false;

async function stopAndExit(code) {
  if (stopping) return;
  stopping = true;
  try {
    if (broker) await broker.stop();
  } catch (err) {
    log(`stop failed: ${err && err.message}`);
    code = 1;
  }
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = signal;
    log(`${signal}: stopping the broker`);
    // during start-up main() stops it once startBroker() returns
    if (broker) void stopAndExit(0);
  });
}

async function main() {
  setInterval(() => {}, 1 << 30); // stay up until a signal arrives
  broker = await startBroker({
    log,
    onUnexpectedExit: ({ code, signal }) => {
      log(`the broker exited unexpectedly (code ${code}, signal ${signal}); see ${broker && broker.logFile}`);
      void stopAndExit(1);
    },
  });
  if (signalled) return stopAndExit(0);
  if (broker.mode === 'external') {
    log('KAFKA_BROKERS is already set: nothing started');
    process.stdout.write(`KAFKA_BROKERS=${broker.brokers}\n`);
    process.exit(0);
  }
  log(
    `Kafka ${broker.version} (${broker.mode}) up in ${broker.startupMs} ms` +
      `${broker.logFile ? `; logs: ${broker.logFile}` : ''}; Ctrl-C stops it`,
  );
  process.stdout.write(`KAFKA_BROKERS=${broker.brokers}\n`);
}

main().catch((err) => {
  log(err && err.message ? err.message : String(err));
  process.exit(1);
});
