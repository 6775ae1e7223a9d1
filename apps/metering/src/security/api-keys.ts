/**
 * API keys with scopes, from the environment only.
 *
 *   API_KEYS=read+ingest=<key>,admin=<key>
 *
 * Each entry is `<scopes>=<key>`: scopes `+`-joined from read, ingest, admin; a key of at least
 * 16 characters (letters, digits and - _ . ~ + / only, so it fits in a header). Keys are kept as
 * SHA-256 digests and compared in constant time. With no keys the API is open, which config.ts
 * allows on a loopback HOST only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, HttpException, HttpStatus, Injectable, SetMetadata } from '@nestjs/common';

export type Scope = 'read' | 'ingest' | 'admin';
export const SCOPES: readonly Scope[] = ['read', 'ingest', 'admin'];

export interface ApiKey {
  /** SHA-256 of the key; the key itself is not kept. */
  digest: Buffer;
  scopes: ReadonlySet<Scope>;
  /** Position in API_KEYS (1-based), for logs: never the key. */
  index: number;
}

export const MIN_KEY_LENGTH = 16;
const KEY_CHARS = /^[A-Za-z0-9\-_.~+/]+$/;

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Parses API_KEYS; problems never quote a key. */
export function parseApiKeys(raw: string | null | undefined): { keys: ApiKey[]; problems: string[] } {
  const keys: ApiKey[] = [];
  const problems: string[] = [];
  if (raw === null || raw === undefined || raw.trim() === '') return { keys, problems };
  const entries = raw.split(',').map((e) => e.trim());
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const n = i + 1;
    const rule = 'each entry is <scopes>=<key>, scopes +-joined from read, ingest, admin (e.g. API_KEYS=read+ingest=<key>,admin=<key>)';
    if (entry === '') {
      problems.push(`API_KEYS entry ${n}: empty (${rule})`);
      return;
    }
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      problems.push(`API_KEYS entry ${n}: no "<scopes>=" before the key (${rule})`);
      return;
    }
    const scopeText = entry.slice(0, eq).trim().toLowerCase();
    const key = entry.slice(eq + 1).trim();
    const scopes = scopeText.split('+').map((s) => s.trim());
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown.length) problems.push(`API_KEYS entry ${n}: unknown scope ${unknown.map((u) => `"${u}"`).join(', ')} (scopes are read, ingest, admin)`);
    if (key.length < MIN_KEY_LENGTH) problems.push(`API_KEYS entry ${n} (${scopeText}): the key must be at least ${MIN_KEY_LENGTH} characters`);
    else if (!KEY_CHARS.test(key)) problems.push(`API_KEYS entry ${n} (${scopeText}): the key may hold letters, digits and - _ . ~ + / only`);
    if (seen.has(key)) problems.push(`API_KEYS entry ${n} (${scopeText}): the same key is given twice; give it once with all its scopes`);
    seen.add(key);
    if (!unknown.length && key.length >= MIN_KEY_LENGTH) keys.push({ digest: sha256(key), scopes: new Set(scopes as Scope[]), index: n });
  });
  return { keys: problems.length ? [] : keys, problems };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** The scope a route needs. Routes without it (health, metrics, docs) are public. */
export const SCOPE_KEY = 'metering:scope';
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE_KEY, scope);

/** Finds the key presented, in constant time per configured key (every key is compared). */
export function matchKey(keys: readonly ApiKey[], presented: string): ApiKey | null {
  const d = sha256(presented);
  let found: ApiKey | null = null;
  for (const k of keys) if (timingSafeEqual(k.digest, d) && !found) found = k;
  return found;
}

/** The key from `Authorization: Bearer <key>` or `x-api-key: <key>`; undefined when neither is sent. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x !== '') return x.trim();
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    return m ? m[1].trim() : '';
  }
  return undefined;
}

type Req = { headers: Record<string, string | string[] | undefined>; method?: string; url?: string };
type Reply = { header(name: string, value: string): unknown };

/**
 * Global guard: O(1) per request (one metadata lookup, cached per handler; one SHA-256 and a
 * constant-time compare per configured key). Open when no key is configured (loopback only).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly scopeOf = new WeakMap<object, Scope | null>();

  constructor(private readonly keys: readonly ApiKey[]) {}

  canActivate(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let scope = this.scopeOf.get(handler);
    if (scope === undefined) {
      scope = (Reflect.getMetadata(SCOPE_KEY, handler) as Scope | undefined) ?? (Reflect.getMetadata(SCOPE_KEY, context.getClass()) as Scope | undefined) ?? null;
      this.scopeOf.set(handler, scope);
    }
    if (scope === null || this.keys.length === 0) return true;
    const http = context.switchToHttp();
    return this.authorize(scope, http.getRequest<Req>(), http.getResponse<Reply>());
  }

  /**
   * True when the request presents a key with `scope`; otherwise throws the 401/403 (and sets
   * WWW-Authenticate on `reply`). canActivate for Nest's routes; called directly by the routes
   * Fastify serves without Nest's router (http/check-route.ts).
   */
  authorize(scope: Scope, req: Req, reply: Reply): boolean {
    if (this.keys.length === 0) return true;
    const presented = presentedKey(req.headers);
    if (presented === undefined || presented === '') {
      reply.header('www-authenticate', 'Bearer realm="metering"');
      throw new HttpException(
        {
          error: 'unauthorized',
          message: `an API key is required: send the header "Authorization: Bearer <key>" or "x-api-key: <key>" (a key with the "${scope}" scope)`,
          requiredScope: scope,
        },
        HttpStatus.UNAUTHORIZED,
      );
    }
    const key = matchKey(this.keys, presented);
    if (!key) {
      reply.header('www-authenticate', 'Bearer realm="metering", error="invalid_token"');
      throw new HttpException({ error: 'unauthorized', message: 'the API key sent is not valid', requiredScope: scope }, HttpStatus.UNAUTHORIZED);
    }
    if (!key.scopes.has(scope))
      throw new HttpException(
        {
          error: 'forbidden',
          message: `this API key lacks the "${scope}" scope needed for ${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`.replace(/\s+$/, ''),
          requiredScope: scope,
          keyScopes: [...key.scopes],
        },
        HttpStatus.FORBIDDEN,
      );
    return true;
  }
}
