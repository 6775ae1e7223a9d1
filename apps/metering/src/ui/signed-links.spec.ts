import { csrfOf, signSession, signUsageLink, verifySession, verifyUsageLink } from './signed-links';

const secret = Buffer.from('a-test-secret-of-at-least-32-characters!!');
const now = Date.parse('2026-07-01T10:00:00Z');

describe('signed usage links', () => {
  test('a link opens its Space until it expires', () => {
    const t = signUsageLink(secret, 'acme', now + 60_000);
    expect(verifyUsageLink(secret, t, 'acme', now)).toEqual({ ok: true, expiresAt: now + 60_000 });
    expect(verifyUsageLink(secret, t, 'acme', now + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });

  test('a link for one Space never opens another', () => {
    const t = signUsageLink(secret, 'acme', now + 60_000);
    expect(verifyUsageLink(secret, t, 'acme2', now)).toEqual({ ok: false, reason: 'other_space' });
  });

  test('a tampered payload, signature or secret is refused', () => {
    const t = signUsageLink(secret, 'acme', now + 60_000);
    const [payload, sig] = t.split('.');
    const forged = Buffer.from(JSON.stringify({ v: 1, s: 'acme', e: now + 10 * 86_400_000 })).toString('base64url');
    expect(verifyUsageLink(secret, `${forged}.${sig}`, 'acme', now)).toEqual({ ok: false, reason: 'bad_signature' });
    const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1);
    expect(verifyUsageLink(secret, `${payload}.${flipped}`, 'acme', now)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyUsageLink(Buffer.from('another-secret-of-at-least-32-characters'), t, 'acme', now)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyUsageLink(secret, 'garbage', 'acme', now)).toEqual({ ok: false, reason: 'malformed' });
  });

  test('a signature spelled otherwise (the unused bits of its last character) is refused: tokens are not malleable', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // 32 bytes in 43 characters: the last character's 2 low bits are unused (0 when signed), and
    // the 3 characters that differ only there decode to the same bytes.
    for (let i = 0; i < 20; i++) {
      const t = signUsageLink(secret, `acme-${i}`, now + 60_000);
      const [payload, sig] = t.split('.');
      const last = ALPHABET.indexOf(sig.at(-1) as string);
      expect(last % 4).toBe(0);
      for (const low of [1, 2, 3]) {
        const respelled = sig.slice(0, -1) + ALPHABET[last + low];
        expect(Buffer.from(respelled, 'base64url')).toEqual(Buffer.from(sig, 'base64url')); // the same bytes
        expect(verifyUsageLink(secret, `${payload}.${respelled}`, `acme-${i}`, now)).toEqual({ ok: false, reason: 'bad_signature' });
      }
      expect(verifyUsageLink(secret, t, `acme-${i}`, now).ok).toBe(true);
    }
  });

  test('a session token is not a link token, nor the reverse', () => {
    const session = signSession(secret, ['read', 'admin'], now + 60_000);
    expect(verifyUsageLink(secret, session, 'acme', now).ok).toBe(false);
    expect(verifySession(secret, signUsageLink(secret, 'acme', now + 60_000), now).ok).toBe(false);
    const s = verifySession(secret, session, now);
    expect(s.ok && [...s.scopes].sort()).toEqual(['admin', 'read']);
    expect(verifySession(secret, session, now + 60_000).ok).toBe(false);
    expect(csrfOf(secret, session)).not.toEqual(csrfOf(secret, signSession(secret, ['read'], now + 60_000)));
  });
});
