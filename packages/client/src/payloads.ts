import { deriveEventId, isoInstant } from './event-id';
import type { BatchExportInput, BatchExportedV1, GenerationInput, GenerationPerformedV1, SubscriptionChangedV1, SubscriptionInput } from './types';

const strip = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** The generation-performed payload (usage.generation-performed.v1) of an input, with its eventId. */
export function generationPayload(input: GenerationInput): GenerationPerformedV1 {
  const { eventId, sourceId, occurredAt, ...rest } = input as GenerationInput & { eventId?: string; sourceId?: string };
  const fields = strip({ ...rest, occurredAt: isoInstant(occurredAt, 'occurredAt') }) as Omit<GenerationPerformedV1, 'eventId'>;
  return { eventId: eventId ?? deriveEventId('generation-performed', { ...fields, sourceId }), ...fields };
}

/** The batch-exported payload (usage.batch-exported.v1) of an input, with its eventId. */
export function batchExportPayload(input: BatchExportInput): BatchExportedV1 {
  const { eventId, sourceId, occurredAt, ...rest } = input as BatchExportInput & { eventId?: string; sourceId?: string };
  const fields = strip({ ...rest, occurredAt: isoInstant(occurredAt, 'occurredAt') }) as Omit<BatchExportedV1, 'eventId'>;
  return { eventId: eventId ?? deriveEventId('batch-exported', { ...fields, sourceId }), ...fields };
}

/** The subscription-changed payload (billing.subscription-changed.v1); effectiveAt defaults to `now`. */
export function subscriptionPayload(spaceId: string, input: SubscriptionInput, now: () => Date = () => new Date()): SubscriptionChangedV1 {
  const { eventId, effectiveAt, ...rest } = input;
  const fields = strip({ ...rest, spaceId, effectiveAt: isoInstant(effectiveAt ?? now(), 'effectiveAt') }) as Omit<SubscriptionChangedV1, 'eventId'>;
  return { eventId: eventId ?? deriveEventId('subscription-changed', fields), ...fields };
}
