/**
 * An idle service sleeps: with a consumer, a producer and an admin connected through the messaging
 * port and nothing to do, the process creates a few timers a second (fetch waits, heartbeats), not
 * one per connection per millisecond as kafkajs 2.2.4 does on its own (request-queue-fix.ts).
 */
import { createHook } from 'node:async_hooks';
import { captureLogs, messagingFor, Resources, sleep, uniqueName, waitFor, withLogsOnFailure } from './support';

/** Timers created in this process during `ms`. */
async function timersCreatedDuring(ms: number): Promise<number> {
  let timers = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout') timers++;
    },
  }).enable();
  try {
    await sleep(ms);
  } finally {
    hook.disable();
  }
  return timers;
}

describe('idle Kafka connections (real broker)', () => {
  const resources = new Resources();
  afterEach(() => resources.closeAll());

  it('wake the process a few times a second, not every millisecond', async () => {
    const logs = captureLogs();
    await withLogsOnFailure(logs, async () => {
      const messaging = messagingFor(logs);
      const topic = uniqueName('idle');
      await messaging.ensureTopics([{ name: topic, partitions: 4 }]);
      const producer = resources.producer(messaging.producer());
      await producer.send(topic, [{ key: 'k', value: 'one' }]);
      let received = 0;
      const consumer = resources.consumer(messaging.batchConsumer({ groupId: uniqueName('idle-group'), topics: [topic], maxWaitTimeMs: 500 }));
      await consumer.run(async (batch) => {
        received += batch.messages.length;
      });
      await waitFor(() => received === 1, 'the message');
      await sleep(500); // the commit and the first empty fetches settle

      const perSecond = (await timersCreatedDuring(3_000)) / 3;
      // Fetches (every 500 ms per broker), heartbeats and kafkajs' own waits: tens a second at
      // most. Without the fix each of the connections re-arms a 1 ms timer: thousands a second.
      expect(perSecond).toBeLessThan(100);
      expect(logs.records.filter((r) => /idle-loop fix not applied/.test(r.message))).toEqual([]);

      // Still live after the quiet spell: a new message is consumed.
      await producer.send(topic, [{ key: 'k', value: 'two' }]);
      await waitFor(() => received === 2, 'the second message');
    });
  });
});
