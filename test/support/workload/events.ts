/**
 * Builders of valid inbound events of each kind, and the usage mix the scenarios draw. Every
 * instant may be given as epoch ms or as an ISO string; the result is the inbound contract itself.
 */
import type { Cycle, InboundEvent, Limits, Plan } from '@metering/domain';
import type { WorkloadCatalog } from './catalog';
import type { Draw } from './random';

export type SubscriptionChanged = Extract<InboundEvent, { type: 'subscription-changed' }>;
export type GenerationPerformed = Extract<InboundEvent, { type: 'generation-performed' }>;
export type BatchExported = Extract<InboundEvent, { type: 'batch-exported' }>;
export type UsageEvent = GenerationPerformed | BatchExported;

export const iso = (at: number | string): string => (typeof at === 'number' ? new Date(at).toISOString() : at);

export function subscriptionChanged(f: { eventId: string; spaceId: string; plan: Plan; cycle: Cycle; effectiveAt: number | string; customLimits?: Limits }): SubscriptionChanged {
  return {
    type: 'subscription-changed',
    eventId: f.eventId,
    spaceId: f.spaceId,
    plan: f.plan,
    cycle: f.cycle,
    effectiveAt: iso(f.effectiveAt),
    ...(f.customLimits ? { customLimits: f.customLimits } : {}),
  };
}

/** What every usage event carries. */
export interface UsageBase {
  eventId: string;
  spaceId: string;
  userId: string;
  occurredAt: number | string;
}

export function generationPerformed(base: UsageBase, f: { feature: string; medium: 'image' | 'video'; generations: number; batchId?: string; platform?: string }): GenerationPerformed {
  return {
    type: 'generation-performed',
    eventId: base.eventId,
    spaceId: base.spaceId,
    userId: base.userId,
    occurredAt: iso(base.occurredAt),
    feature: f.feature,
    medium: f.medium,
    generations: f.generations,
    ...(f.batchId !== undefined ? { batchId: f.batchId, platform: f.platform } : {}),
  };
}

export function batchExported(base: UsageBase, f: { batchId: string; images: number; platform: string }): BatchExported {
  return { type: 'batch-exported', eventId: base.eventId, spaceId: base.spaceId, userId: base.userId, occurredAt: iso(base.occurredAt), batchId: f.batchId, images: f.images, platform: f.platform };
}

/** An inbound event without its `type`: the body of a Kafka message or of a POST. */
export function bodyOf(e: InboundEvent): Record<string, unknown> {
  const { type: _type, ...body } = e;
  return body;
}

/** Enterprise limits, small on purpose now and then (0 included), so enterprise Spaces cross thresholds too (3 draws). */
export function customLimits(d: Draw): Limits {
  return {
    ai_image_credits: d.pick([0, 20, 60, 200, 1000]),
    ai_video_credits: d.pick([0, 10, 40, 300]),
    batch_exports: d.pick([0, 150, 600, 5000]),
  };
}

/**
 * The usage mix of the simulated-clock life and the fault run: 70 % generations of any catalog
 * feature with its medium (1-3; a fifth of them inside a batch on any platform), else a batch
 * export on any platform within its cap (mostly small, 1 in 20 a full one).
 */
export function randomUsage(d: Draw, cat: WorkloadCatalog, base: UsageBase, batchId: string): UsageEvent {
  if (d.rand() < 0.7) {
    const f = d.pick(cat.features);
    const inBatch = d.rand() < 0.2;
    const platform = d.pick(cat.platforms).id;
    return generationPerformed(base, { feature: f.id, medium: f.medium, generations: d.int(1, 3), ...(inBatch ? { batchId, platform } : {}) });
  }
  const platform = d.pick(cat.platforms);
  const images = d.rand() < 0.05 ? platform.cap : Math.max(1, Math.floor(platform.cap * d.rand() * d.rand() * 0.6));
  return batchExported(base, { batchId, images, platform: platform.id });
}
