/**
 * The messaging port on kafkajs against a real broker (started once per run by the jest global
 * setup). Each test uses its own topics and consumer groups.
 */
import { type BatchConsumerOptions, type ConsumedMessage, type HandlerFailure, type MessageBatch, type OutgoingMessage, RetryLater } from '../../libs/messaging/src';
import { captureLogs, messagingFor, offsets, Resources, sleep, uniqueName, waitFor } from './support';

/** Consumer settings that keep the tests quick: short fetch waits and frequent heartbeats. */
const FAST: Partial<BatchConsumerOptions> = { maxWaitTimeMs: 100, heartbeatIntervalMs: 300, sessionTimeoutMs: 6_000 };

interface Delivery {
  at: number;
  batch: MessageBatch;
}

const valuesOf = (messages: ConsumedMessage[]): string[] => messages.map((m) => m.value.toString('utf8'));
const offsetsOf = (messages: ConsumedMessage[]): number[] => messages.map((m) => Number(m.offset));
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
/** 20 messages over 20 keys (so over every partition of a small topic), valued `${name}-0` to `${name}-19`. */
const wave = (name: string): OutgoingMessage[] => range(0, 20).map((i) => ({ key: `k${i}`, value: `${name}-${i}` }));

async function expectAllCommitted(topic: string, groupId: string): Promise<void> {
  await waitFor(async () => [...(await offsets(topic, groupId)).values()].every((o) => o.committed === o.end), `${groupId} to commit everything`);
}

describe('messaging port on kafkajs (real broker)', () => {
  const resources = new Resources();
  afterEach(() => resources.closeAll());

  /** A new topic of `partitions` and a group of its own, a messaging instance whose logs are captured, and a producer. */
  async function freshTopic(tag: string, partitions: number) {
    const logs = captureLogs();
    const messaging = messagingFor(logs);
    const topic = uniqueName(tag);
    const groupId = uniqueName('group');
    await messaging.ensureTopics([{ name: topic, partitions }]);
    return { logs, messaging, topic, groupId, producer: resources.producer(messaging.producer()) };
  }

  it('round-trips keyed messages with headers, in order per key, and commits what was handled', async () => {
    const logs = captureLogs();
    const messaging = messagingFor(logs);
    const topic = uniqueName('round-trip');
    const groupId = uniqueName('group');

    expect(await messaging.ensureTopics([{ name: topic, partitions: 4 }])).toEqual([{ name: topic, created: true, partitions: 4 }]);
    expect(await messaging.ensureTopics([{ name: topic, partitions: 4 }])).toEqual([{ name: topic, created: false, partitions: 4 }]);

    const sent: OutgoingMessage[] = range(0, 60).map((i) => ({
      key: `space-${i % 6}`,
      value: i % 2 === 0 ? JSON.stringify({ space: i % 6, seq: Math.floor(i / 6) }) : Buffer.from(JSON.stringify({ space: i % 6, seq: Math.floor(i / 6) })),
      headers: { 'event-id': `event-${i}`, 'content-type': 'application/json' },
    }));
    const binary = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    const producer = resources.producer(messaging.producer());
    await producer.send(topic, sent.slice(0, 30));
    await producer.send(topic, [...sent.slice(30), { key: 'binary', value: binary }]);

    const deliveries: MessageBatch[] = [];
    const consumer = resources.consumer(messaging.batchConsumer({ groupId, topics: [topic], ...FAST }));
    await consumer.run(async (batch) => {
      deliveries.push(batch);
    });
    await waitFor(() => deliveries.flatMap((b) => b.messages).length >= 61, 'all 61 messages');
    await expectAllCommitted(topic, groupId);

    const received = deliveries.flatMap((b) => b.messages);
    expect(received).toHaveLength(61);
    const byEventId = new Map(received.filter((m) => m.key !== 'binary').map((m) => [m.headers['event-id'], m]));
    expect(byEventId.size).toBe(60);
    sent.forEach((s, i) => {
      const got = byEventId.get(`event-${i}`);
      expect(got).toBeDefined();
      expect(got!.key).toBe(s.key);
      expect(got!.value.equals(Buffer.isBuffer(s.value) ? s.value : Buffer.from(s.value))).toBe(true);
      expect(got!.headers).toEqual({ 'event-id': `event-${i}`, 'content-type': 'application/json' });
      expect(Number(got!.timestamp)).toBeGreaterThan(Date.now() - 120_000);
    });
    const bin = received.find((m) => m.key === 'binary');
    expect(bin!.value.equals(binary)).toBe(true);
    expect(bin!.headers).toEqual({});

    // a batch is one partition, offsets strictly increasing; a key keeps its order
    for (const batch of deliveries) {
      expect(batch.topic).toBe(topic);
      const offs = offsetsOf(batch.messages);
      expect(offs).toEqual([...offs].sort((a, b) => a - b));
      expect(new Set(offs).size).toBe(offs.length);
    }
    for (let space = 0; space < 6; space++) {
      const seqs = received.filter((m) => m.key === `space-${space}`).map((m) => JSON.parse(m.value.toString()).seq);
      expect(seqs).toEqual(range(0, 10));
    }
    // no handler or commit trouble (kafkajs itself logs retriable broker answers as errors: not checked)
    expect(logs.records.filter((r) => r.source === 'messaging' && (r.level === 'error' || /handler|commit/.test(r.message)))).toEqual([]);
  });

  it('re-delivers a failed batch from the last committed offset after a backoff, skips nothing, and keeps other partitions moving', async () => {
    const { logs, messaging, topic, groupId, producer } = await freshTopic('redeliver', 2);
    await producer.send(topic, wave('w1'));

    const initialDelayMs = 400;
    const deliveries: Delivery[] = [];
    const succeeded: Delivery[] = [];
    const failures: HandlerFailure[] = [];
    let failingPartition: number | null = null;
    let failingFirstOffset: string | null = null;
    let attemptsOnFailing = 0;
    const consumer = resources.consumer(
      messaging.batchConsumer({
        groupId,
        topics: [topic],
        ...FAST,
        retry: { initialDelayMs, factor: 2, maxDelayMs: 5_000 },
        onHandlerError: (_error, info) => failures.push(info),
      }),
    );
    await consumer.run(async (batch) => {
      const delivery = { at: Date.now(), batch };
      deliveries.push(delivery);
      if (failingPartition === null) {
        failingPartition = batch.partition;
        failingFirstOffset = batch.messages[0].offset;
      }
      if (batch.partition === failingPartition && batch.messages[0].offset === failingFirstOffset) {
        attemptsOnFailing += 1;
        if (attemptsOnFailing === 1) await producer.send(topic, wave('w2')); // news for both partitions meanwhile
        if (attemptsOnFailing <= 2) throw new Error(`simulated failure #${attemptsOnFailing}`);
      }
      succeeded.push(delivery);
    });

    await waitFor(() => succeeded.flatMap((d) => d.batch.messages).length >= 40, 'all 40 messages handled', 30_000);
    await expectAllCommitted(topic, groupId);

    // the failing batch came three times, always from the same first offset, with growing pauses
    const onFailing = deliveries.filter((d) => d.batch.partition === failingPartition && d.batch.messages[0].offset === failingFirstOffset);
    expect(onFailing).toHaveLength(3);
    expect(failures.map((f) => [f.partition, f.firstOffset, f.attempt])).toEqual([
      [failingPartition, failingFirstOffset, 1],
      [failingPartition, failingFirstOffset, 2],
    ]);
    const firstGap = onFailing[1].at - onFailing[0].at;
    const secondGap = onFailing[2].at - onFailing[1].at;
    expect(firstGap).toBeGreaterThanOrEqual(initialDelayMs * 0.8 - 20);
    expect(secondGap).toBeGreaterThanOrEqual(initialDelayMs * 2 * 0.8 - 20);
    // the redelivery holds at least everything the failed delivery held
    expect(offsetsOf(onFailing[2].batch.messages).slice(0, onFailing[0].batch.messages.length)).toEqual(offsetsOf(onFailing[0].batch.messages));

    // handled exactly once, no gap, per partition
    const handled = new Map<number, number[]>();
    for (const d of succeeded) handled.set(d.batch.partition, [...(handled.get(d.batch.partition) ?? []), ...offsetsOf(d.batch.messages)]);
    const ends = await offsets(topic, groupId);
    for (const [partition, { end }] of ends) expect(handled.get(partition) ?? []).toEqual(range(0, Number(end)));
    expect(valuesOf(succeeded.flatMap((d) => d.batch.messages)).sort()).toEqual([...wave('w1'), ...wave('w2')].map((m) => String(m.value)).sort());

    // while the failing partition waited, the other one went on (if the keys reached it)
    const other = failingPartition === 0 ? 1 : 0;
    if ((handled.get(other) ?? []).length > 0) {
      const otherDone = succeeded.filter((d) => d.batch.partition === other).map((d) => d.at);
      expect(Math.min(...otherDone)).toBeLessThan(onFailing[2].at);
    }
    expect(logs.records.some((r) => r.level === 'warn' && r.message.includes('handler failed'))).toBe(true);
  });

  it('hands a batch back with RetryLater: delivered again after its delay from the same offset, not a failure, other partitions moving meanwhile', async () => {
    const { logs, messaging, topic, groupId, producer } = await freshTopic('later', 2);
    await producer.send(topic, wave('v'));
    const delayMs = 300;
    const deliveries: Delivery[] = [];
    const handled: Delivery[] = [];
    const failures: HandlerFailure[] = [];
    let held: { partition: number; offset: string } | null = null;
    let handedBack = 0;
    const consumer = resources.consumer(
      messaging.batchConsumer({ groupId, topics: [topic], ...FAST, retry: { initialDelayMs: 20_000 }, onHandlerError: (_e, info) => failures.push(info) }),
    );
    await consumer.run(async (batch) => {
      const delivery = { at: Date.now(), batch };
      deliveries.push(delivery);
      held ??= { partition: batch.partition, offset: batch.messages[0].offset };
      if (batch.partition === held.partition && batch.messages[0].offset === held.offset && handedBack < 2) {
        handedBack++;
        throw new RetryLater(delayMs, 'not ready');
      }
      handled.push(delivery);
    });
    await waitFor(() => handled.flatMap((d) => d.batch.messages).length >= 20, 'all 20 messages handled', 30_000);
    await expectAllCommitted(topic, groupId);
    const h = held!;
    const onHeld = deliveries.filter((d) => d.batch.partition === h.partition && d.batch.messages[0].offset === h.offset);
    expect(onHeld).toHaveLength(3);
    // after its own delay each time (not the 20 s failure backoff), and not a failure
    for (let i = 1; i < 3; i++) {
      expect(onHeld[i].at - onHeld[i - 1].at).toBeGreaterThanOrEqual(delayMs * 0.8 - 20);
      expect(onHeld[i].at - onHeld[i - 1].at).toBeLessThan(10_000);
    }
    expect(failures).toEqual([]);
    expect(logs.records.filter((r) => r.level === 'warn' || r.level === 'error')).toEqual([]);
    // the other partition (20 keys reach both) was handled while the held one waited
    const other = handled.filter((d) => d.batch.partition !== h.partition);
    expect(other.length).toBeGreaterThan(0);
    expect(Math.min(...other.map((d) => d.at))).toBeLessThan(onHeld[2].at);
    // each message handled once
    expect(valuesOf(handled.flatMap((d) => d.batch.messages)).sort()).toEqual(wave('v').map((m) => String(m.value)).sort());
  });

  it('commits only after the handler resolved: a member that dies mid-batch leaves its batch to the next one', async () => {
    const { logs, messaging, topic, groupId, producer } = await freshTopic('crash', 1);
    await producer.send(topic, range(0, 10).map((i) => ({ key: 'space-1', value: `m${i}` })));

    // member A handles the first 10, then hangs on the next batch and "crashes"
    const handledByA: ConsumedMessage[] = [];
    let hangingBatch: MessageBatch | null = null;
    const a = messaging.batchConsumer({ groupId, topics: [topic], ...FAST, stopTimeoutMs: 300 });
    resources.consumer(a);
    await a.run(async (batch) => {
      if (Number(batch.messages[0].offset) >= 10) {
        hangingBatch = batch;
        await new Promise<never>(() => undefined); // never resolves: the process "died" here
      }
      handledByA.push(...batch.messages);
    });
    await waitFor(() => handledByA.length === 10, 'A to handle the first 10');
    await waitFor(async () => (await offsets(topic, groupId)).get(0)!.committed === '10', 'A to commit offset 10');

    await producer.send(topic, range(10, 20).map((i) => ({ key: 'space-1', value: `m${i}` })));
    await waitFor(() => hangingBatch !== null, 'A to start on the second batch');
    expect(valuesOf(hangingBatch!.messages)).toEqual(range(10, 20).map((i) => `m${i}`));
    await a.stop(); // gives up on the hanging handler after stopTimeoutMs, commits nothing for it
    expect((await offsets(topic, groupId)).get(0)!.committed).toBe('10');
    expect(logs.records.some((r) => r.message.includes('abandoned, not committed'))).toBe(true);

    // member B of the same group resumes exactly at the first unhandled offset
    const handledByB: ConsumedMessage[] = [];
    const b = resources.consumer(messaging.batchConsumer({ groupId, topics: [topic], ...FAST }));
    await b.run(async (batch) => {
      handledByB.push(...batch.messages);
    });
    await waitFor(() => handledByB.length >= 10, 'B to handle the 10 A left');
    await waitFor(async () => (await offsets(topic, groupId)).get(0)!.committed === '20', 'B to commit offset 20');
    expect(offsetsOf(handledByB)).toEqual(range(10, 20));
    expect(valuesOf(handledByB)).toEqual(range(10, 20).map((i) => `m${i}`));
  });

  it('shares the partitions of a topic between two members of one group, each message handled once', async () => {
    const messaging = messagingFor();
    const topic = uniqueName('shared');
    const groupId = uniqueName('group');
    await messaging.ensureTopics([{ name: topic, partitions: 4 }]);

    const byMember = { a: [] as MessageBatch[], b: [] as MessageBatch[] };
    const a = resources.consumer(messaging.batchConsumer({ groupId, topics: [topic], ...FAST }));
    await a.run(async (batch) => {
      byMember.a.push(batch);
    });
    const b = resources.consumer(messaging.batchConsumer({ groupId, topics: [topic], ...FAST }));
    await b.run(async (batch) => {
      byMember.b.push(batch);
    });

    const producer = resources.producer(messaging.producer());
    const sent = range(0, 80).map((i) => ({ key: `space-${i % 40}`, value: `v${i}` }));
    await producer.send(topic, sent);
    const all = () => [...byMember.a, ...byMember.b].flatMap((batch) => batch.messages);
    await waitFor(() => all().length >= 80, 'all 80 messages');
    await expectAllCommitted(topic, groupId);
    await sleep(300); // would expose a late duplicate

    expect(valuesOf(all()).sort()).toEqual(sent.map((s) => s.value).sort());
    const partitionsOf = (batches: MessageBatch[]) => new Set(batches.map((batch) => batch.partition));
    const pa = partitionsOf(byMember.a);
    const pb = partitionsOf(byMember.b);
    expect(pa.size).toBeGreaterThan(0);
    expect(pb.size).toBeGreaterThan(0);
    expect([...pa].filter((p) => pb.has(p))).toEqual([]);
    expect([...pa, ...pb].sort()).toEqual([0, 1, 2, 3]);
  });

  it('keeps the group session alive while a handler runs longer than the session timeout', async () => {
    const { messaging, topic, groupId, producer } = await freshTopic('long', 1);
    await producer.send(topic, [{ key: 'space-1', value: 'slow' }]);

    const calls: number[] = [];
    const consumer = resources.consumer(
      messaging.batchConsumer({ groupId, topics: [topic], maxWaitTimeMs: 100, sessionTimeoutMs: 1_500, heartbeatIntervalMs: 300 }),
    );
    await consumer.run(async (batch) => {
      calls.push(Number(batch.messages[0].offset));
      await sleep(3_000); // twice the session timeout
    });
    await waitFor(async () => (await offsets(topic, groupId)).get(0)!.committed === '1', 'the slow batch to be committed', 20_000);
    await sleep(500);
    expect(calls).toEqual([0]); // without heartbeats the member is evicted, the commit fails and it comes again
  });
});
