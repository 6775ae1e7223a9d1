/**
 * Signed, short-lived tokens for the usage screen (issue 15), so the product's app can show a
 * Space's screen in an iframe or web view without an API key in the browser.
 *
 *   token = base64url(JSON {v: 1, s: spaceId, e: expiresAtMs}) "." base64url(HMAC-SHA256(secret, label + payload))
 *
 * A link token names one Space: it never opens another. Console sessions (a cookie made after an
 * API key was shown once) use the same format with another label and the key's scopes instead of
 * a Space, so one kind can never be taken for the other.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Scope } from '../security/api-keys';

const LINK_LABEL = 'metering.usage-link.v1.';
const SESSION_LABEL = 'metering.ui-session.v1.';

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const mac = (secret: Buffer, label: string, payload: string): Buffer => createHmac('sha256', secret).update(label + payload, 'utf8').digest();

function sign(secret: Buffer, label: string, body: object): string {
  const payload = b64url(JSON.stringify(body));
  return `${payload}.${b64url(mac(secret, label, payload))}`;
}

type Opened = { ok: true; body: Record<string, unknown> } | { ok: false; reason: 'malformed' | 'bad_signature' };

function open(secret: Buffer, label: string, token: string): Opened {
  if (typeof token !== 'string' || token.length > 2048) return { ok: false, reason: 'malformed' };
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  // Compared as text with the canonical encoding, not as decoded bytes: the last of the 43
  // characters carries 2 unused bits, so 4 spellings decode to the same MAC (a token is malleable,
  // and a changed last character could still pass).
  const expected = Buffer.from(b64url(mac(secret, label, m[1])), 'ascii');
  const given = Buffer.from(m[2], 'ascii');
  if (!timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  try {
    const body = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8'));
    if (typeof body !== 'object' || body === null || body.v !== 1) return { ok: false, reason: 'malformed' };
    return { ok: true, body };
  } catch {
    return { ok: false, reason: 'malformed' };
  }
}

export type LinkCheck = { ok: true; expiresAt: number } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' | 'other_space' };

export function signUsageLink(secret: Buffer, spaceId: string, expiresAt: number): string {
  return sign(secret, LINK_LABEL, { v: 1, s: spaceId, e: expiresAt });
}

/** Checks a link token for `spaceId` at `now`: signature first, then expiry, then the Space. */
export function verifyUsageLink(secret: Buffer, token: string, spaceId: string, now: number): LinkCheck {
  const o = open(secret, LINK_LABEL, token);
  if (!o.ok) return o;
  const { s, e } = o.body as { s?: unknown; e?: unknown };
  if (typeof s !== 'string' || typeof e !== 'number' || !Number.isFinite(e)) return { ok: false, reason: 'malformed' };
  if (e <= now) return { ok: false, reason: 'expired' };
  if (s !== spaceId) return { ok: false, reason: 'other_space' };
  return { ok: true, expiresAt: e };
}

export function signSession(secret: Buffer, scopes: readonly Scope[], expiresAt: number): string {
  return sign(secret, SESSION_LABEL, { v: 1, sc: [...scopes].sort(), e: expiresAt });
}

export function verifySession(secret: Buffer, token: string, now: number): { ok: true; scopes: Set<Scope>; expiresAt: number } | { ok: false } {
  const o = open(secret, SESSION_LABEL, token);
  if (!o.ok) return { ok: false };
  const { sc, e } = o.body as { sc?: unknown; e?: unknown };
  if (!Array.isArray(sc) || typeof e !== 'number' || e <= now) return { ok: false };
  const scopes = new Set(sc.filter((x): x is Scope => x === 'read' || x === 'ingest' || x === 'admin'));
  return { ok: true, scopes, expiresAt: e };
}

/** A token that guards the console's POSTs against cross-site requests: derived from the session. */
export function csrfOf(secret: Buffer, session: string): string {
  return b64url(mac(secret, 'metering.ui-csrf.v1.', session)).slice(0, 32);
}
