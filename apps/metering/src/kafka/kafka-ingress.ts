import type { InboundEvent } from '@metering/domain';
import type { MessageProducer } from '@metering/messaging';
import type { EventIngress } from '../ingest/ingress';
import { type KafkaSettings, inboundTopicOf } from './kafka-settings';

/** With Kafka on, POST /v1/events publishes valid events to their inbound topics, keyed by spaceId. */
export class KafkaIngress implements EventIngress {
  constructor(private readonly producer: MessageProducer, private readonly settings: KafkaSettings) {}

  async publish(events: InboundEvent[]): Promise<void> {
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const { type, ...body } of events) {
      const topic = inboundTopicOf(this.settings, type);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), { key: body.spaceId, value: JSON.stringify(body) }]);
    }
    for (const [topic, messages] of byTopic) await this.producer.send(topic, messages);
  }
}

