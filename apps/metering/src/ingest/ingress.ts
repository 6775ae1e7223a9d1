/**
 * Where POST /v1/events sends valid events when the service is not to decide them itself: with Kafka
 * on, the inbound topics (kafka/kafka-ingress.ts implements it). The HTTP layer depends on this
 * port, never on the Kafka folder.
 */
import type { InboundEvent } from '@metering/domain';

export interface EventIngress {
  publish(events: InboundEvent[]): Promise<void>;
}

/** DI token: the ingress, or null when every event is decided in this process. */
export const EVENT_INGRESS = Symbol('EVENT_INGRESS');
