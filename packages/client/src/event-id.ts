import { createHash } from 'node:crypto';

/** The namespace of the client's deterministic ids (a fixed random UUID). */
export const METERING_NAMESPACE = '6f1c3a52-8d0e-4b7a-9c35-2e41d8f07b19';

function uuidV5(name: string, namespace = METERING_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** JSON with sorted keys, undefined fields left out: the same value gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * A deterministic eventId (a name-based UUID, version 5): the same parts always give the same id,
 * different parts a different one. An AI service that retries the same generation (after a
 * timeout, a crash, a redelivery of its own job) sends the same eventId, and the service records
 * it once: this is what makes every retry of the client safe.
 *
 *   eventIdFor('generation-performed', spaceId, jobId, imageIndex)
 */
export function eventIdFor(kind: string, ...parts: (string | number)[]): string {
  if (!kind) throw new TypeError('eventIdFor: a kind is required (e.g. "generation-performed")');
  return uuidV5(canonicalJson([kind, ...parts.map((p) => (typeof p === 'number' ? p : String(p)))]));
}

/** The eventId of a payload that has none: derived from its type, spaceId and `sourceId`, or else from every field. */
export function deriveEventId(type: string, payload: Record<string, unknown> & { spaceId: string; sourceId?: string }): string {
  const { sourceId, eventId: _ignored, ...fields } = payload as Record<string, unknown> & { sourceId?: string };
  if (typeof sourceId === 'string' && sourceId.length > 0) return eventIdFor(type, payload.spaceId, 'source', sourceId);
  // The same instant written two ways (Z or +01:00, with or without milliseconds) is the same fact.
  for (const k of ['occurredAt', 'effectiveAt']) {
    const t = typeof fields[k] === 'string' ? Date.parse(fields[k] as string) : NaN;
    if (!Number.isNaN(t)) fields[k] = new Date(t).toISOString();
  }
  return uuidV5(canonicalJson([type, 'payload', fields]));
}

/** An instant as the service's contracts take it (ISO-8601 with a zone). */
export function isoInstant(v: Date | string, field: string): string {
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError(`${field}: an invalid Date`);
    return v.toISOString();
  }
  return v;
}
