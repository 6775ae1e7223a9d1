/**
 * A broker of its own (not the shared one of the global setup): restarted twice, gracefully and
 * by SIGKILL, while a producer and a batch consumer of the messaging port stay up. Checks the
 * harness's restart() (same address, data kept) and that the port's clients ride through it.
 */
import { startBroker, type KafkaBroker } from '../../scripts/kafka/broker';
import { createKafkaJsMessaging, type ConsumedMessage, type OutgoingMessage } from '../../libs/messaging/src';
import { captureLogs, Resources, uniqueName, waitFor } from './support';
import { Kafka, logLevel } from 'kafkajs';

describe('broker restart', () => {
  let broker: KafkaBroker;
  const resources = new Resources();

  beforeAll(async () => {
    broker = await startBroker({ fresh: true });
  });
  afterAll(async () => {
    (globalThis as any).__dump?.();
    await resources.closeAll();
    await broker?.stop();
  });

  async function committedEqualsEnd(topic: string, groupId: string): Promise<boolean> {
    const admin = new Kafka({ clientId: 'restart-test', brokers: [broker.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      return ends.every((e) => committed.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
    } finally {
      await admin.disconnect();
    }
  }

  it('keeps every message and the committed offsets across a graceful and a hard restart', async () => {
    const logs = captureLogs();
    const messaging = createKafkaJsMessaging({ clientId: uniqueName('restart'), brokers: [broker.brokers] }, { logger: logs.logger, logLevel: 'debug' });
    const topic = uniqueName('restart');
    const groupId = uniqueName('group');
    await messaging.ensureTopics([{ name: topic, partitions: 2 }]);
    const producer = resources.producer(messaging.producer());
    const received: ConsumedMessage[] = [];
    const consumer = resources.consumer(
      // A broker restart makes kafkajs restart the consumer under a new member id; the group only
      // reassigns partitions once the old member's session expires: keep it short here.
      messaging.batchConsumer({ groupId, topics: [topic], maxWaitTimeMs: 100, heartbeatIntervalMs: 300, sessionTimeoutMs: 3_000 }),
    );
    await consumer.run(async (batch) => {
      received.push(...batch.messages);
    });
    const wave = (name: string): OutgoingMessage[] => Array.from({ length: 20 }, (_, i) => ({ key: `space-${i % 5}`, value: `${name}-${i}` }));
    const address = broker.brokers;

    await producer.send(topic, wave('before'));
    await waitFor(() => received.length >= 20, 'the first wave');
    await waitFor(() => committedEqualsEnd(topic, groupId), 'the first wave committed');

    const T = Date.now(); const mark = (m: string) => logs.logger({ level: 'info', source: 'TEST', message: `${Date.now() - T} ms ${m}`, fields: {} });
    (globalThis as any).__dump = () => console.log(logs.records.filter(r => r.level !== 'debug' && !/ECONNREFUSED/.test(r.message)).map(r => `${r.level} ${r.source} ${r.message} ${JSON.stringify(r.fields).slice(0, 300)}`).join('\n'));
    await broker.restart();
    mark('restarted');
    expect(broker.brokers).toBe(address);
    await producer.send(topic, wave('after-restart'));
    mark('sent 2');
    await waitFor(() => received.length >= 40, 'the second wave', 60_000);
    mark('received 2');
    await waitFor(() => committedEqualsEnd(topic, groupId), 'the second wave committed', 60_000);

    mark('committed 2');
    await broker.restart({ hard: true });
    mark('restarted hard');
    expect(broker.brokers).toBe(address);
    await producer.send(topic, wave('after-crash'));
    mark('sent 3');
    await waitFor(() => received.length >= 60, 'the third wave', 60_000);
    mark('received 3');
    await waitFor(() => committedEqualsEnd(topic, groupId), 'the third wave committed', 60_000);

    // Nothing lost. Duplicates are allowed (at-least-once: a commit refused because the restart
    // expired our membership means the batch comes again) but only as the same record again.
    const byPosition = new Map<string, string>();
    for (const m of received) {
      const position = `${m.key}/${m.offset}`;
      const value = m.value.toString();
      expect(byPosition.get(position) ?? value).toBe(value);
      byPosition.set(position, value);
    }
    expect([...byPosition.values()].sort()).toEqual([...wave('before'), ...wave('after-restart'), ...wave('after-crash')].map((m) => String(m.value)).sort());
    for (let space = 0; space < 5; space++) {
      // per key, first deliveries come in the order the waves were sent
      const firstSeen = [...new Set(received.filter((m) => m.key === `space-${space}`).map((m) => m.value.toString()))];
      const waveOf = (v: string) => ['before', 'after-restart', 'after-crash'].indexOf(v.replace(/-\d+$/, ''));
      expect(firstSeen.map(waveOf)).toEqual([...firstSeen.map(waveOf)].sort());
    }
    expect(logs.records.filter((r) => r.source === 'messaging' && r.level === 'error')).toEqual([]);
  });
});
