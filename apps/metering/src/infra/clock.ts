import { createHash, randomUUID } from 'node:crypto';

/** The clock, injected everywhere a decision needs "now". */
export interface Clock {
  now(): number;
}
export const CLOCK = Symbol('CLOCK');
export const systemClock: Clock = { now: () => Date.now() };

/** Ids: random ones for new inputs; deterministic ones (UUID v5) for decided events. */
export interface IdGenerator {
  random(): string;
  deterministic(name: string): string;
}
export const IDS = Symbol('IDS');

/** UUID v5 namespace of this service (a fixed random UUID). */
const NAMESPACE = Buffer.from('3f1c9a52c4d84b3e9a6f0e4c2b7d8a11', 'hex');

export function uuidV5(name: string, namespace: Buffer = NAMESPACE): string {
  const hash = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export const systemIds: IdGenerator = { random: () => randomUUID(), deterministic: uuidV5 };
