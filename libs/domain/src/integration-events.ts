/**
 * Integration events: what other services receive, versioned apart from the stored domain events.
 * A stored event may gain fields (for the decider, the read models, audits) without changing what
 * the notification service is sent: the relay and the notifications feed map each domain event to
 * its v1 contract here, field by field. The contract is `docs/asyncapi.yaml` (topics
 * `metering.threshold-crossed.v1` and `metering.period-reset.v1`); test/deploy/asyncapi.test.ts
 * validates these messages against it. A breaking change is a v2 type and a new topic.
 */
import type { Cycle, Limits, Plan, Pool } from './catalog/catalog';
import type { PeriodResetData, ThresholdCrossedData } from './events';

/** `metering.threshold-crossed.v1` data. */
export interface ThresholdCrossedV1 {
  spaceId: string;
  pool: Pool;
  threshold: number;
  periodStart: string;
  periodEnd: string | null;
  used: number;
  limit: number;
  causationId: string;
  occurredAt: string;
}

/** `metering.period-reset.v1` data. `boundariesCovered` and `firstBoundary` are absent on resets recorded before catch-ups were folded. */
export interface PeriodResetV1 {
  spaceId: string;
  periodStart: string;
  periodEnd: string | null;
  previousPeriodStart: string;
  plan: Plan;
  cycle: Cycle;
  limits: Limits;
  boundariesCovered?: number;
  firstBoundary?: string;
}

export type IntegrationEventV1 = { type: 'ThresholdCrossed'; data: ThresholdCrossedV1 } | { type: 'PeriodReset'; data: PeriodResetV1 };

/** The envelope of both topics: the stored event's id (consumer dedupe), its Space, position and time. */
export interface IntegrationEnvelopeV1<E extends IntegrationEventV1 = IntegrationEventV1> {
  id: string;
  type: E['type'];
  spaceId: string;
  /** The store position, a 64-bit decimal string. */
  position: string;
  recordedAt: string;
  data: E['data'];
}

export function thresholdCrossedV1(d: ThresholdCrossedData): ThresholdCrossedV1 {
  return {
    spaceId: d.spaceId,
    pool: d.pool,
    threshold: d.threshold,
    periodStart: d.periodStart,
    periodEnd: d.periodEnd,
    used: d.used,
    limit: d.limit,
    causationId: d.causationId,
    occurredAt: d.occurredAt,
  };
}

export function periodResetV1(d: PeriodResetData): PeriodResetV1 {
  return {
    spaceId: d.spaceId,
    periodStart: d.periodStart,
    periodEnd: d.periodEnd,
    previousPeriodStart: d.previousPeriodStart,
    plan: d.plan,
    cycle: d.cycle,
    limits: { ai_image_credits: d.limits.ai_image_credits, ai_video_credits: d.limits.ai_video_credits, batch_exports: d.limits.batch_exports },
    ...(d.boundariesCovered !== undefined ? { boundariesCovered: d.boundariesCovered } : {}),
    ...(d.firstBoundary !== undefined ? { firstBoundary: d.firstBoundary } : {}),
  };
}

/** The v1 integration event of a domain event the notification service receives; null for the others. */
export function integrationEventV1(event: { type: string; data: unknown }): IntegrationEventV1 | null {
  if (event.type === 'ThresholdCrossed') return { type: 'ThresholdCrossed', data: thresholdCrossedV1(event.data as ThresholdCrossedData) };
  if (event.type === 'PeriodReset') return { type: 'PeriodReset', data: periodResetV1(event.data as PeriodResetData) };
  return null;
}

/** The v1 envelope of a stored notification event. */
export function integrationEnvelopeV1(
  stored: { id: string; type: string; data: unknown; recordedAt: string; globalPosition: bigint },
  spaceId: string,
): IntegrationEnvelopeV1 | null {
  const event = integrationEventV1(stored);
  if (!event) return null;
  return { id: stored.id, type: event.type, spaceId, position: stored.globalPosition.toString(), recordedAt: stored.recordedAt, data: event.data };
}
