import { hash as oneShotHash, randomUUID } from 'node:crypto';

/** The clock, injected everywhere a decision needs "now". */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** Ids: random ones for new inputs; deterministic ones (UUID v5) for decided events. */
export interface IdGenerator {
  random(): string;
  deterministic(name: string): string;
}

/** UUID v5 namespace of this service (a fixed random UUID). */
const NAMESPACE = Buffer.from('3f1c9a52c4d84b3e9a6f0e4c2b7d8a11', 'hex');

/** The service namespace followed by room for a name: the bytes hashed for an id, without two Buffers per id. */
const SCRATCH = Buffer.alloc(16 + 1024);
NAMESPACE.copy(SCRATCH, 0);

export function uuidV5(name: string, namespace: Buffer = NAMESPACE): string {
  // One-shot SHA-1 (no Hash object per id: this runs for every decided event). Same bytes as
  // createHash('sha1').update(namespace).update(name, 'utf8'), then RFC 4122 version 5 and variant.
  // A name of at most 1,024 UTF-8 bytes (3 per UTF-16 unit at most) is written after the service
  // namespace in one reused buffer; any other goes through Buffer.concat.
  const bytes =
    namespace === NAMESPACE && name.length * 3 <= SCRATCH.length - 16
      ? SCRATCH.subarray(0, 16 + SCRATCH.write(name, 16, 'utf8'))
      : Buffer.concat([namespace, Buffer.from(name, 'utf8')]);
  const h = oneShotHash('sha1', bytes, 'hex');
  const version = '5';
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${version}${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const systemIds: IdGenerator = { random: () => randomUUID(), deterministic: uuidV5 };
