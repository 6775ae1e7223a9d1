/**
 * uuidV5: the decided events' deterministic ids. The bytes hashed are written into a reused buffer;
 * the ids must stay exactly what RFC 4122 version 5 gives (stored events are deduped by them).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { uuidV5 } from './clock';

const SERVICE_NAMESPACE = Buffer.from('3f1c9a52c4d84b3e9a6f0e4c2b7d8a11', 'hex');

/** RFC 4122 version 5 with a Hash object, as the ids were first computed. */
function reference(name: string, namespace: Buffer): string {
  const h = createHash('sha1').update(namespace).update(name, 'utf8').digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

describe('uuidV5', () => {
  it('gives the RFC 4122 id of a known name (DNS namespace, www.example.com)', () => {
    const dns = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
    expect(uuidV5('www.example.com', dns)).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('property: the same id as the Hash-object form, for any name (short, long, any Unicode) in the service namespace, one after the other', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 400 }), fc.string({ minLength: 330, maxLength: 1200 })), { minLength: 1, maxLength: 5 }), (names) => {
        for (const name of names) expect(uuidV5(name)).toBe(reference(name, SERVICE_NAMESPACE));
      }),
      { numRuns: 500 },
    );
  });
});
