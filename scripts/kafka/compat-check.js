#!/usr/bin/env node
'use strict';
// Checks that kafkajs works against given broker versions, each on a fresh broker of the harness:
//   node --disable-warning=TimeoutNegativeWarning scripts/kafka/compat-check.js 3.9.2 4.1.1
// Steps: create a topic; idempotent produce (acks all); consume with a consumer group via
// eachBatch and manual commits; read the committed offsets back; a second member of the same
// group resumes after the commit; describe/list/delete groups and topics. Exit 1 if any fails.

const { Kafka, logLevel, Partitioners } = require('kafkajs');
const { startBroker } = require('./broker');

const MESSAGES = 200;
const PARTITIONS = 4;

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function consumeUntil(kafka, groupId, topic, wanted, seen) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat }) => {
      for (const m of batch.messages) seen.push(`${batch.partition}:${m.offset}:${m.value.toString()}`);
      resolveOffset(batch.lastOffset());
      await commitOffsetsIfNecessary({
        topics: [{ topic, partitions: [{ partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }] }],
      });
      await heartbeat();
      if (seen.length >= wanted) done();
    },
  });
  if (wanted === 0) done();
  return { consumer, finished };
}

async function checkVersion(version) {
  const steps = [];
  const step = async (name, fn) => {
    const t0 = Date.now();
    try {
      const detail = await fn();
      steps.push({ name, ok: true, ms: Date.now() - t0, detail });
    } catch (err) {
      steps.push({ name, ok: false, ms: Date.now() - t0, detail: err && err.message ? err.message : String(err) });
      throw err;
    }
  };
  let broker;
  try {
    await step('start broker', async () => {
      broker = await startBroker({ version, fresh: true });
      return `${broker.mode} at ${broker.brokers} in ${broker.startupMs} ms`;
    });
    const kafka = new Kafka({ clientId: 'compat-check', brokers: broker.brokers.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const topic = `compat-${Date.now()}`;
    const groupId = `${topic}-group`;
    await step('create topic', async () => {
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      return `${meta.topics[0].partitions.length} partitions`;
    });
    await step('idempotent produce, acks all', async () => {
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      const messages = Array.from({ length: MESSAGES }, (_, i) => ({ key: `k${i % 17}`, value: `v${i}`, headers: { n: String(i) } }));
      const res = await producer.send({ topic, acks: -1, messages });
      await producer.disconnect();
      return `${res.length} partition results`;
    });
    const firstHalf = [];
    await step('consume in a group, manual commit', async () => {
      const { consumer, finished } = await consumeUntil(kafka, groupId, topic, MESSAGES, firstHalf);
      await withTimeout(finished, 30_000, 'consume');
      await consumer.disconnect();
      const unique = new Set(firstHalf.map((s) => s.split(':')[2]));
      if (unique.size !== MESSAGES) throw new Error(`got ${unique.size} distinct messages, wanted ${MESSAGES}`);
      return `${firstHalf.length} messages`;
    });
    await step('committed offsets = end offsets', async () => {
      const [{ partitions }] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      for (const p of partitions) {
        const end = ends.find((e) => e.partition === p.partition).high;
        if (p.offset !== end) throw new Error(`partition ${p.partition}: committed ${p.offset}, end ${end}`);
      }
      return partitions.map((p) => `${p.partition}@${p.offset}`).join(' ');
    });
    await step('second member resumes after the commit', async () => {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'late', value: 'late-1' }, { key: 'late', value: 'late-2' }] });
      await producer.disconnect();
      const seen = [];
      const { consumer, finished } = await consumeUntil(kafka, groupId, topic, 2, seen);
      await withTimeout(finished, 30_000, 'resume');
      await consumer.disconnect();
      const values = seen.map((s) => s.split(':')[2]);
      if (values.join(',') !== 'late-1,late-2') throw new Error(`resumed with ${values.join(',')}`);
      return values.join(',');
    });
    await step('describe, list and delete group', async () => {
      const { groups } = await admin.describeGroups([groupId]);
      const listed = await admin.listGroups();
      await admin.deleteGroups([groupId]);
      return `state ${groups[0].state}, protocolType ${groups[0].protocolType}, listed ${listed.groups.some((g) => g.groupId === groupId)}`;
    });
    await step('delete topic', async () => {
      await admin.deleteTopics({ topics: [topic] });
      return 'ok';
    });
    await admin.disconnect();
  } catch {
    // recorded in steps
  } finally {
    if (broker) await broker.stop();
  }
  return steps;
}

async function main() {
  const versions = process.argv.slice(2);
  if (versions.length === 0) versions.push(process.env.KAFKA_VERSION || require('./broker').DEFAULT_KAFKA_VERSION);
  const kafkajsVersion = require('kafkajs/package.json').version;
  let failed = false;
  for (const version of versions) {
    const steps = await checkVersion(version);
    const ok = steps.length > 0 && steps.every((s) => s.ok) && steps.length === 8;
    failed = failed || !ok;
    process.stdout.write(`\nkafkajs ${kafkajsVersion} x Kafka ${version}: ${ok ? 'OK' : 'FAILED'}\n`);
    for (const s of steps) process.stdout.write(`  ${s.ok ? 'ok  ' : 'FAIL'} ${s.name} (${s.ms} ms): ${s.detail}\n`);
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
