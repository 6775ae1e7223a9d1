/**
 * Issue 8 item 3: the outbound relay with several instances on one PostgreSQL store. A lease (a
 * PostgreSQL advisory lock on a dedicated session) lets one instance relay at a time: while both
 * run, every stored id is published once and only by the holder; when the holder dies (its session
 * is killed) the other takes over from the shared checkpoint and nothing is lost; the consumer lag
 * query of the messaging port answers for a real group.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { PostgresEventStore } from '@metering/event-store';
import type { Messaging } from '@metering/messaging';
import { PostgresAdvisoryLease } from '../../apps/metering/src/infra/lease';
import { kafkaSettingsFromEnv } from '../../apps/metering/src/kafka/kafka-settings';
import { OutboundRelay, RELAY_CHECKPOINT } from '../../apps/metering/src/kafka/outbound-relay';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { TopicCollector, kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';

jest.setTimeout(180_000);
const log = { info: () => undefined, warn: () => undefined, error: (o: unknown, m?: string) => console.error(m, o) };

describe('outbound relay with two instances', () => {
  const schema = freshSchemaName('relaylease');
  let messaging: Messaging;
  let store: PostgresEventStore;
  afterAll(async () => {
    await store?.close();
    await dropSchema(schema);
  });

  it('one relays at a time, no duplicate while both run, the survivor takes over when the holder dies', async () => {
    const topics = testTopics();
    const settings = kafkaSettingsFromEnv({ ...kafkaEnv(topics, `g-${randomUUID().slice(0, 8)}`, 2) })!;
    messaging = testMessaging();
    await messaging.ensureTopics([{ name: topics.thresholdCrossed, partitions: 2 }]);
    store = new PostgresEventStore({ url: PG_URL, schema });
    await store.migrate();

    const instance = async (name: string) => {
      const positions = new PostgresBalanceReadModel({ url: PG_URL, schema });
      await positions.init();
      const producer = messaging.producer();
      const published: string[] = [];
      const relay = new OutboundRelay(store, positions, producer, settings, log, (_t, n) => published.push(...Array(n).fill(name)));
      const lease = new PostgresAdvisoryLease(PG_URL, `${schema}:${RELAY_CHECKPOINT}`, log, 200);
      await lease.start(
        () => relay.start(),
        () => relay.stop(),
      );
      return { name, relay, lease, producer, positions, published };
    };

    const collector = await new TopicCollector(messaging, topics.thresholdCrossed).start();
    const a = await instance('a');
    const b = await instance('b');
    const ids: string[] = [];
    const appendSome = async (n: number, tag: string) => {
      for (let i = 0; i < n; i++) {
        const id = randomUUID();
        ids.push(id);
        const spaceId = `lease-${tag}-${i % 7}`;
        await store.append(`space-${spaceId}`, [{ id, type: 'ThresholdCrossed', data: { spaceId, pool: 'batch_exports', threshold: 80 } }], 'any');
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 20));
      }
    };
    const distinctPublished = () => new Set(collector.messages.map((m) => m.headers['event-id']));
    try {
      expect([a.lease.held, b.lease.held].filter(Boolean)).toHaveLength(1);
      await appendSome(150, 'one');
      await until(() => distinctPublished().size, (n) => n >= 150, 'the first 150 relayed', 60_000);
      await new Promise((r) => setTimeout(r, 500));
      // While both run: each id published exactly once, all by the holder.
      const eventIds = collector.messages.map((m) => m.headers['event-id']);
      expect(eventIds).toHaveLength(150);
      expect(new Set(eventIds)).toEqual(new Set(ids));
      const [holder, other] = a.lease.held ? [a, b] : [b, a];
      expect(holder.published).toHaveLength(150);
      expect(other.published).toHaveLength(0);

      // The holder dies: its database session is killed, so the lock goes; the other takes over.
      const key = BigInt.asUintN(64, BigInt(holder.lease.key));
      const c = new Client({ connectionString: PG_URL });
      await c.connect();
      const { rows } = await c.query<{ pid: number }>(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid",
        [String(key >> 32n), String(key & 0xffffffffn)],
      );
      expect(rows).toHaveLength(1);
      await c.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      await c.end();
      await until(() => other.lease.held && !holder.lease.held, (ok) => ok, 'the take-over', 10_000, 50);

      await appendSome(100, 'two');
      await until(() => distinctPublished().size, (n) => n >= 250, 'all 250 relayed', 60_000);
      expect(distinctPublished()).toEqual(new Set(ids));
      expect(other.published.length).toBeGreaterThanOrEqual(100);
      // The checkpoint is shared: the survivor did not start over from the beginning.
      expect(collector.messages.length).toBeLessThan(300);

      // The messaging port's consumer-lag query, for a group that has read everything.
      if (messaging.consumerLag) {
        const lag = await messaging.consumerLag(`collector-none-${randomUUID()}`, [topics.thresholdCrossed, 'no-such-topic-xyz']);
        expect(lag.map((l) => l.topic)).toEqual([topics.thresholdCrossed, topics.thresholdCrossed]);
        // A group that never committed is behind by everything published.
        expect(lag.reduce((s, l) => s + l.lag, 0)).toBeGreaterThanOrEqual(250);
      }
    } finally {
      for (const x of [a, b]) {
        await x.lease.stop();
        await x.producer.close();
        await x.positions.close();
      }
      await collector.stop();
    }
  });
});
