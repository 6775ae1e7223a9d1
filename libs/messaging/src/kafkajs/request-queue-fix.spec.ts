/**
 * The kafkajs request queue before and after `fixKafkaJsIdleLoop`, on kafkajs' own RequestQueue
 * (jest gives this file its own copy of the kafkajs modules, so the first test sees the method as
 * kafkajs ships it).
 */
import { fixKafkaJsIdleLoop, kafkaJsRequestQueue } from './request-queue-fix';

type Queue = {
  pending: unknown[];
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  maybeThrottle(ms: number): void;
  push(request: unknown): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  destroy(): void;
};

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function newQueue(maxInFlightRequests: number | null = null): Queue & { checks: () => number } {
  const RequestQueue = kafkaJsRequestQueue() as unknown as new (o: object) => Queue;
  const q = new RequestQueue({ maxInFlightRequests, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'spec', broker: 'spec:9092', logger: silent });
  let checks = 0;
  const check = q.checkPendingRequests.bind(q);
  q.checkPendingRequests = () => {
    checks++;
    check();
  };
  return Object.assign(q, { checks: () => checks });
}

/** A request as kafkajs' connection pushes it; `sent` counts its sends. */
function request(correlationId: number, sent: number[]) {
  return {
    entry: { correlationId, apiKey: 3, apiName: 'Metadata', apiVersion: 0, resolve: () => undefined, reject: () => undefined },
    expectResponse: true,
    sendRequest: () => sent.push(correlationId),
  };
}

describe('kafkajs request queue: no timer while nothing waits', () => {
  const queues: Queue[] = [];
  afterEach(() => queues.splice(0).forEach((q) => q.destroy()));

  it('as kafkajs 2.2.4 ships it, an empty queue checks itself again every millisecond', async () => {
    const q = newQueue();
    queues.push(q);
    q.checkPendingRequests(); // what every response does
    await sleep(100);
    expect(q.pending).toHaveLength(0);
    expect(q.checks()).toBeGreaterThan(10); // about 1 per ms; a loaded machine runs timers late
    expect(q.throttleCheckTimeoutId).not.toBeNull();
  });

  it('fixed, an empty queue schedules nothing after a response', async () => {
    expect(fixKafkaJsIdleLoop()).toEqual({ applied: true });
    expect(fixKafkaJsIdleLoop()).toEqual({ applied: true }); // once per process
    const q = newQueue();
    queues.push(q);
    q.checkPendingRequests();
    await sleep(100);
    expect(q.checks()).toBe(1);
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  it('fixed, a request held by a client-side throttle is sent when the throttle ends, not before', async () => {
    fixKafkaJsIdleLoop();
    const sent: number[] = [];
    const q = newQueue();
    queues.push(q);
    q.maybeThrottle(60);
    q.push(request(1, sent));
    expect(sent).toEqual([]);
    expect(q.pending).toHaveLength(1);
    await sleep(20);
    expect(sent).toEqual([]);
    await sleep(100);
    expect(sent).toEqual([1]);
    expect(q.pending).toHaveLength(0);
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  it('fixed, a request held by the in-flight limit is sent when a response frees a slot', async () => {
    fixKafkaJsIdleLoop();
    const sent: number[] = [];
    const q = newQueue(1);
    queues.push(q);
    q.push(request(1, sent));
    q.push(request(2, sent));
    expect(sent).toEqual([1]);
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    expect(sent).toEqual([1, 2]);
    q.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
    await sleep(50);
    expect(q.throttleCheckTimeoutId).toBeNull();
  });
});
