/**
 * A stop() that comes while kafkajs handles a crash of the consumer must end it for good.
 *
 * kafkajs' crash handler logs "Crash: ...", disconnects, asks `retry.restartOnFailure`, and then
 * sets its restart timer. A stop() that ran during that disconnect found no timer to clear, so the
 * restart reconnected after it: the consumer kept retrying against a stopped broker and the
 * process never exited. The batch consumer answers `restartOnFailure` with "only while I am
 * running" (batch-consumer.ts); this test calls stop() exactly in that window, from the crash's
 * own log line. The crash: a broker of its own killed with SIGKILL, so that the consumer loses its
 * connections (kafkajs restarts from that kind of crash) rather than being told the group moved (a
 * graceful shutdown's "Failed to find group coordinator", which kafkajs does not restart from).
 */
import { startBroker, type KafkaBroker } from '../../scripts/kafka/broker';
import { createKafkaJsMessaging, type MessagingLogRecord } from '../../libs/messaging/src';
import { Resources, uniqueName, waitFor } from './support';

jest.setTimeout(180_000);

describe('batch consumer: stop() during a crash', () => {
  let broker: KafkaBroker | undefined;
  const resources = new Resources();

  afterAll(async () => {
    await resources.closeAll(); // a failed test's clients too (both close calls are idempotent)
    await broker?.stop();
  });

  it('is not restarted by kafkajs after a stop() made while kafkajs handled the crash', async () => {
    broker = await startBroker({ fresh: true });
    const records: { at: number; record: MessagingLogRecord }[] = [];
    let onCrashLine: (() => void) | null = null;
    const logger = (record: MessagingLogRecord) => {
      records.push({ at: Date.now(), record });
      if (onCrashLine && record.level === 'error' && record.message.startsWith('Crash:')) {
        const f = onCrashLine;
        onCrashLine = null;
        f();
      }
    };
    const messaging = createKafkaJsMessaging(
      { clientId: uniqueName('stop-crash'), brokers: [broker.brokers], connectionTimeoutMs: 1_000, requestTimeoutMs: 3_000 },
      { logger, logLevel: 'info' },
    );
    const topic = uniqueName('stop-crash');
    const groupId = uniqueName('group');
    await messaging.ensureTopics([{ name: topic, partitions: 1 }]);
    const producer = resources.producer(messaging.producer());
    const consumer = resources.consumer(messaging.batchConsumer({ groupId, topics: [topic], maxWaitTimeMs: 100, heartbeatIntervalMs: 300, sessionTimeoutMs: 3_000 }));
    const received: string[] = [];
    await consumer.run(async (batch) => {
      received.push(...batch.messages.map((m) => m.value.toString()));
    });
    await producer.send(topic, [{ key: 'k', value: 'one' }]);
    await waitFor(() => received.includes('one'), 'the first message consumed');
    await producer.close();

    // The crash: the broker goes away, kafkajs exhausts its retries and crashes the consumer.
    let stopped: Promise<void> | null = null;
    onCrashLine = () => {
      // Inside kafkajs' crash handler, before its own disconnect: the window of the old bug.
      stopped = consumer.stop();
    };
    if (broker.pid) process.kill(broker.pid, 'SIGKILL');
    else await broker.stop();
    await waitFor(() => stopped !== null, 'kafkajs to crash the consumer after the broker stopped', 120_000);
    await stopped;
    const stoppedAt = Date.now();

    // kafkajs would restart after its retry time (300 ms here): give it far more than that.
    await new Promise((r) => setTimeout(r, 5_000));
    const messages = records.map((r) => r.record.message);
    const after = records.filter((r) => r.at >= stoppedAt).map((r) => r.record.message);
    expect(messages.filter((m) => m.startsWith('Restarting the consumer'))).toEqual([]);
    // A restart logs "Starting" (then fails to connect, crashes again...). A connection attempt
    // already under way may still report its error as the stop completes: not counted.
    expect(after.filter((m) => /^(Starting|Crash:)/.test(m))).toEqual([]);
    // And the window was the one of the bug: kafkajs asked whether to restart (it asks only after a
    // crash it restarts from), after the stop() had begun.
    expect(messages.filter((m) => m.startsWith('kafkajs would restart the crashed consumer'))).toEqual([
      'kafkajs would restart the crashed consumer; not restarted: it is stopping',
    ]);
  });
});
