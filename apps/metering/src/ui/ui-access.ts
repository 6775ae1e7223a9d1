/**
 * Who may see the pages (issue 15). The pages are not behind the API-key guard (a browser cannot
 * send an Authorization header on navigation); each route asks here instead:
 *  - API_KEYS unset (loopback only, as the API): everything is open;
 *  - an API key in the headers (as the API takes it), or the console session cookie made from one
 *    (POST /ui/session), grants that key's scopes;
 *  - a signed usage link (`?t=`) grants reading the one Space it names, until it expires.
 */
import { type AppConfig } from '../config';
import { type Scope, matchKey, presentedKey } from '../security/api-keys';
import { csrfOf, verifySession, verifyUsageLink } from './signed-links';

export const SESSION_COOKIE = 'metering_ui';
export const SESSION_TTL_MS = 8 * 3600_000;

export interface UiRequest {
  headers: Record<string, string | string[] | undefined>;
  query?: unknown;
  protocol?: string;
}

export interface Access {
  open: boolean;
  scopes: ReadonlySet<Scope>;
  /** The session token (cookie) when the scopes came from one. */
  session: string | null;
}

export function cookieOf(req: UiRequest, name: string): string | null {
  const raw = req.headers.cookie;
  const text = Array.isArray(raw) ? raw.join('; ') : (raw ?? '');
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function accessOf(config: AppConfig, req: UiRequest, now: number): Access {
  if (config.apiKeys.length === 0) return { open: true, scopes: new Set<Scope>(['read', 'ingest', 'admin']), session: null };
  const presented = presentedKey(req.headers);
  if (presented) {
    const key = matchKey(config.apiKeys, presented);
    return { open: false, scopes: key ? key.scopes : new Set(), session: null };
  }
  const token = cookieOf(req, SESSION_COOKIE);
  if (token) {
    const s = verifySession(config.ui.linkSecret, token, now);
    if (s.ok) return { open: false, scopes: s.scopes, session: token };
  }
  return { open: false, scopes: new Set(), session: null };
}

export const canRead = (a: Access): boolean => a.open || a.scopes.has('read') || a.scopes.has('admin');

/** Link check result for a Space page: null when no token was given. */
export function linkAccess(config: AppConfig, req: UiRequest, spaceId: string, now: number) {
  const t = (req.query as Record<string, unknown> | undefined)?.t;
  if (typeof t !== 'string' || t === '') return null;
  return verifyUsageLink(config.ui.linkSecret, t, spaceId, now);
}

/**
 * A console POST comes from the console itself: with a session, the CSRF header derived from it;
 * in the open mode, an Origin (when the browser sends one) equal to the page's host.
 */
export function sameSiteWrite(config: AppConfig, req: UiRequest, access: Access): boolean {
  if (access.session) return req.headers['x-csrf-token'] === csrfOf(config.ui.linkSecret, access.session);
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === '') return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
