#!/usr/bin/env node
'use strict';
// CI step: get everything the Kafka harness needs into the cache before the tests run.
//   node scripts/kafka/prefetch.js [--jars-only] [version ...]
// (default version: $KAFKA_VERSION, else the harness default). For each version it resolves the
// broker jars with Maven, then starts and stops a broker once, which checks that it runs and
// records the class-data archive that makes later starts faster (skip that with --jars-only).
// Needs `mvn` and `java` unless the jars are cached already.

const { ensureKafkaLibs, startBroker, DEFAULT_KAFKA_VERSION } = require('./broker');

const log = (m) => process.stderr.write(`[kafka:prefetch] ${m}\n`);

async function main() {
  const args = process.argv.slice(2);
  const jarsOnly = args.includes('--jars-only');
  const versions = args.filter((a) => !a.startsWith('--'));
  if (versions.length === 0) versions.push(process.env.KAFKA_VERSION || DEFAULT_KAFKA_VERSION);
  for (const version of versions) {
    const started = Date.now();
    const dir = ensureKafkaLibs({ version, log });
    let note = 'jars only';
    if (!jarsOnly) {
      const broker = await startBroker({ version, mode: 'jvm', fresh: true, log });
      await broker.stop();
      note = `broker started in ${broker.startupMs} ms and stopped`;
    }
    process.stdout.write(`Kafka ${version}: ${dir} (${note}; ${Date.now() - started} ms)\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
