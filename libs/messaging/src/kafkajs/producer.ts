import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { MessageProducer, MessagingLogger, OutgoingMessage } from '../port';

/**
 * Idempotent producer (one in-flight request per connection, acks from all in-sync replicas):
 * kafkajs' own retries can neither duplicate nor reorder a message. Keys are partitioned with
 * the Java client's murmur2, so every client maps a spaceId to the same partition.
 */
export class KafkaJsProducer implements MessageProducer {
  private readonly producer: Producer;
  private connecting: Promise<void> | null = null;
  private closed = false;

  constructor(
    kafka: Kafka,
    private readonly log: MessagingLogger,
    private readonly requestTimeoutMs = 30_000,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  async send(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new Error(`producer is closed: cannot send to ${topic}`);
    if (messages.length === 0) return;
    await this.connect();
    await this.producer.send({
      topic,
      acks: -1,
      timeout: this.requestTimeoutMs,
      compression: CompressionTypes.None,
      messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const connecting = this.connecting;
    this.connecting = null;
    if (connecting) await connecting.catch(() => undefined);
    await this.producer.disconnect();
    this.log({ level: 'debug', message: 'producer closed', source: 'messaging', fields: {} });
  }

  private connect(): Promise<void> {
    if (!this.connecting) {
      this.connecting = this.producer.connect().catch((err: unknown) => {
        this.connecting = null; // let the next send try again
        throw err;
      });
    }
    return this.connecting;
  }
}
