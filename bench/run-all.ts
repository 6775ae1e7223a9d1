/**
 * Every benchmark, one after the other, each rewriting its section of bench/RESULTS.md
 * (`npm run bench`; `npm run bench -- --smoke` for the short forms, which never write RESULTS.md).
 * One Kafka broker serves the two Kafka benchmarks (KAFKA_BROKERS, or one started here).
 */
import { log, scaleFromArgs, writeReport } from './common';
import { runApiBench } from './api.bench';
import { runFlatBench } from './flat.bench';
import { runHistoryBench } from './history.bench';
import { runIngestBench } from './ingest.bench';
import { runPgVsSqliteBench } from './pg-vs-sqlite.bench';
import { runRebuildBench } from './rebuild.bench';
import { runRssBench } from './rss.bench';
import { runSqliteLengthBench } from './sqlite-length.bench';
import { runStatementsBench } from './statements.bench';
import { runStoreBench } from './store.bench';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startBroker } = require('../scripts/kafka/broker');

async function main(): Promise<void> {
  const scale = scaleFromArgs();
  const broker = process.env.KAFKA_BROKERS ? null : await startBroker({ log: () => undefined });
  if (broker) process.env.KAFKA_BROKERS = broker.brokers;
  const failed: string[] = [];
  try {
    const steps: [string, () => Promise<Parameters<typeof writeReport>[0]>][] = [
      ['store', () => runStoreBench(scale)],
      ['statements', () => runStatementsBench(scale)],
      ['pg-vs-sqlite', () => runPgVsSqliteBench(scale)],
      ['flat', () => runFlatBench(scale)],
      ['sqlite-length', () => runSqliteLengthBench(scale)],
      ['rebuild', () => runRebuildBench(scale)],
      ['api', () => runApiBench(scale)],
      ['ingest', () => runIngestBench({ scale, brokers: process.env.KAFKA_BROKERS })],
      ['rss', () => runRssBench(scale)],
      ['history', () => runHistoryBench(scale)],
    ];
    for (const [name, step] of steps) {
      log(`--- ${name}`);
      try {
        writeReport(await step(), scale);
      } catch (err) {
        failed.push(name);
        process.stderr.write(`${name} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      }
    }
  } finally {
    await broker?.stop();
  }
  if (failed.length) {
    process.stderr.write(`benchmarks that failed: ${failed.join(', ')}\n`);
    process.exit(1);
  }
  process.exit(0);
}

void main();
