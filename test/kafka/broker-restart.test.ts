/**
 * A broker of its own (not the shared one of the global setup): restarted twice, gracefully and
 * by SIGKILL, while a producer and a batch consumer of the messaging port stay up. Checks the
 * harness's restart() (same address, data kept) and that the port's clients ride through it.
 */
import { Kafka, logLevel } from 'kafkajs';
import { startBroker, type KafkaBroker } from '../../scripts/kafka/broker';
import { createKafkaJsMessaging, type ConsumedMessage, type OutgoingMessage } from '../../libs/messaging/src';
import { captureLogs, Resources, uniqueName, waitFor, withLogsOnFailure } from './support';

const WAVES = ['before', 'after-restart', 'after-crash'];

describe('broker restart', () => {
  let broker: KafkaBroker;
  const resources = new Resources();

  beforeAll(async () => {
    broker = await startBroker({ fresh: true });
  });
  afterAll(async () => {
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
    await withLogsOnFailure(logs, async () => {
      const messaging = createKafkaJsMessaging({ clientId: uniqueName('restart'), brokers: [broker.brokers] }, { logger: logs.logger });
      const topic = uniqueName('restart');
      const groupId = uniqueName('group');
      await messaging.ensureTopics([{ name: topic, partitions: 2 }]);
      const producer = resources.producer(messaging.producer());
      const received: ConsumedMessage[] = [];
      const consumer = resources.consumer(
        // A broker restart makes kafkajs restart the consumer under a new member id; the group
        // reassigns the partitions once the old member's session expires: keep it short here.
        messaging.batchConsumer({ groupId, topics: [topic], maxWaitTimeMs: 100, heartbeatIntervalMs: 300, sessionTimeoutMs: 3_000 }),
      );
      await consumer.run(async (batch) => {
        received.push(...batch.messages);
      });
      const wave = (name: string): OutgoingMessage[] => Array.from({ length: 20 }, (_, i) => ({ key: `space-${i % 5}`, value: `${name}-${i}` }));
      const address = broker.brokers;
      const distinct = () => new Set(received.map((m) => m.value.toString())).size;

      await producer.send(topic, wave(WAVES[0]));
      await waitFor(() => distinct() === 20, 'the first wave');
      await waitFor(() => committedEqualsEnd(topic, groupId), 'the first wave committed');

      await broker.restart();
      expect(broker.brokers).toBe(address);
      await producer.send(topic, wave(WAVES[1]));
      await waitFor(() => distinct() === 40, 'the second wave', 60_000);
      await waitFor(() => committedEqualsEnd(topic, groupId), 'the second wave committed', 60_000);

      await broker.restart({ hard: true });
      expect(broker.brokers).toBe(address);
      await producer.send(topic, wave(WAVES[2]));
      await waitFor(() => distinct() === 60, 'the third wave', 60_000);
      await waitFor(() => committedEqualsEnd(topic, groupId), 'the third wave committed', 60_000);

      // Nothing lost, nothing written twice. Deliveries may repeat (at-least-once: a commit refused
      // because the restart ended our membership brings the batch again), but only as the same record.
      const byPosition = new Map<string, string>();
      for (const m of received) {
        const position = `${m.key}/${m.offset}`;
        const value = m.value.toString();
        expect(byPosition.get(position) ?? value).toBe(value);
        byPosition.set(position, value);
      }
      expect([...byPosition.values()].sort()).toEqual(WAVES.flatMap((w) => wave(w)).map((m) => String(m.value)).sort());
      for (let space = 0; space < 5; space++) {
        // per key, first deliveries come in the order the waves were sent
        const firstSeen = [...new Set(received.filter((m) => m.key === `space-${space}`).map((m) => m.value.toString()))];
        const waveOf = firstSeen.map((v) => WAVES.indexOf(v.replace(/-\d+$/, '')));
        expect(waveOf).toEqual([...waveOf].sort());
      }
      expect(logs.records.filter((r) => r.source === 'messaging' && r.level === 'error')).toEqual([]);
    });
  });
});
