import { type Limits } from '../catalog/catalog';
import type { SpaceEvent } from '../events';
import { isoOfParsed, parseInstant } from '../period';
import type { SpaceCommand } from './commands';

// ---------------------------------------------------------------------------------------------
// Payload fingerprints: one eventId, one fact

/**
 * The fields of an inbound event that make it the fact it is, in a canonical form. Two deliveries
 * with the same eventId are the same fact when these are equal (a duplicate) and a conflict when
 * not. Not part of it: the arrival time, the spaceId (dedupe is per Space), the key, the topic.
 * Instants are compared as instants (any zone), optional fields absent or null alike.
 */
export function canonicalPayload(command: SpaceCommand): Record<string, unknown> | null {
  switch (command.type) {
    case 'RecordGeneration': {
      const i = command.input;
      return { kind: 'generation', userId: i.userId, feature: i.feature, medium: i.medium, generations: i.generations, occurredAt: instantText(i.occurredAt), batchId: i.batchId ?? null, platform: i.platform ?? null };
    }
    case 'RecordBatchExport': {
      const i = command.input;
      return { kind: 'batch', userId: i.userId, batchId: i.batchId, images: i.images, platform: i.platform, occurredAt: instantText(i.occurredAt) };
    }
    case 'ChangeSubscription': {
      const i = command.input;
      const c = i.customLimits as Partial<Limits> | null | undefined;
      return {
        kind: 'subscription', plan: i.plan, cycle: i.cycle, effectiveAt: instantText(i.effectiveAt),
        customLimits: c === null || c === undefined ? null : { ai_image_credits: c.ai_image_credits, ai_video_credits: c.ai_video_credits, batch_exports: c.batch_exports },
      };
    }
    default:
      return null;
  }
}

/** The canonical payload a recorded event was decided from (the same as its inbound command's). */
export function canonicalRecorded(event: SpaceEvent): Record<string, unknown> | null {
  const spaceId = event.data.spaceId;
  switch (event.type) {
    case 'GenerationRecorded': {
      const d = event.data;
      const input = { eventId: d.sourceEventId, spaceId, userId: d.userId, feature: d.feature, medium: d.medium, generations: d.generations, occurredAt: d.occurredAt };
      return canonicalPayload({ type: 'RecordGeneration', input: { ...input, batchId: d.batchId ?? undefined, platform: d.platform ?? undefined } });
    }
    case 'BatchExportRecorded': {
      const d = event.data;
      return canonicalPayload({ type: 'RecordBatchExport', input: { eventId: d.sourceEventId, spaceId, userId: d.userId, batchId: d.batchId, images: d.images, platform: d.platform, occurredAt: d.occurredAt } });
    }
    case 'SubscriptionChanged': {
      const d = event.data;
      const customLimits = d.plan === 'enterprise' ? (d.customLimits ?? d.limits) : undefined;
      return canonicalPayload({ type: 'ChangeSubscription', input: { eventId: d.sourceEventId, spaceId, plan: d.plan, cycle: d.cycle, effectiveAt: d.effectiveAt, customLimits } });
    }
    default:
      return null;
  }
}

function instantText(v: unknown): unknown {
  const t = parseInstant(v);
  // parseInstant only reads strings; the text is kept when it is already iso(t) (no formatting).
  return Number.isNaN(t) ? v : isoOfParsed(v as string, t);
}

/** A 53-bit hash (cyrb53) of a string: the fingerprint kept per eventId. */
function hash53(str: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

const fingerprintOf = (canonical: Record<string, unknown> | null): number => hash53(JSON.stringify(canonical));

/** Fingerprint of an inbound command's payload. */
export const inboundFingerprint = (command: SpaceCommand): number => fingerprintOf(canonicalPayload(command));

/** Fingerprint of the payload a recorded event was decided from (equal to its inbound's). */
export const recordedFingerprint = (event: SpaceEvent): number => fingerprintOf(canonicalRecorded(event));

/** The fields whose values differ between a resent command and the recorded event (for the conflict message). */
export function payloadDifferences(command: SpaceCommand, recorded: SpaceEvent): string[] {
  const a = canonicalPayload(command) ?? {};
  const b = canonicalRecorded(recorded) ?? {};
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
