/**
 * Inbound contracts (versioned). Structural validation (types, required fields) happens at the
 * edge; the domain checks the rules that need the catalog or the Space's state.
 */
import type { Cycle, Limits, Medium, Plan } from './catalog/catalog';

export const INBOUND_TOPICS = {
  generationPerformed: 'usage.generation-performed.v1',
  batchExported: 'usage.batch-exported.v1',
  subscriptionChanged: 'billing.subscription-changed.v1',
} as const;

export const OUTBOUND_TOPICS = {
  thresholdCrossed: 'metering.threshold-crossed.v1',
  periodReset: 'metering.period-reset.v1',
  deadLetter: 'metering.dead-letter.v1',
} as const;

export interface GenerationPerformedV1 {
  eventId: string;
  spaceId: string;
  userId: string;
  feature: string;
  medium: Medium;
  /** "Generate more" yields 2 images = 2 generations. */
  generations: number;
  occurredAt: string;
  batchId?: string;
  platform?: string;
}

export interface BatchExportedV1 {
  eventId: string;
  spaceId: string;
  userId: string;
  batchId: string;
  images: number;
  platform: string;
  occurredAt: string;
}

export interface SubscriptionChangedV1 {
  eventId: string;
  spaceId: string;
  plan: Plan;
  cycle: Cycle;
  effectiveAt: string;
  /** Enterprise only: the Space's own limits. */
  customLimits?: Limits;
}

export type InboundEvent =
  | ({ type: 'generation-performed' } & GenerationPerformedV1)
  | ({ type: 'batch-exported' } & BatchExportedV1)
  | ({ type: 'subscription-changed' } & SubscriptionChangedV1);

export type InboundType = InboundEvent['type'];

/** Why an input was refused: the field and the rule it broke, and a sentence for people. */
export interface Rejection {
  field: string;
  rule: string;
  message: string;
}
