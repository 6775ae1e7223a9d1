/**
 * Open mode (no API_KEYS; allowed on a loopback HOST only) is reachable by every web page the
 * user's browser visits: a page may post to http://127.0.0.1:3000, and DNS rebinding makes a
 * hostile name resolve to 127.0.0.1. So in open mode:
 *  - only loopback Host values are served (localhost, 127.x.x.x, [::1], with any port): a rebound
 *    name arrives with its own Host and is refused (403, rule `loopback_host`);
 *  - writes (POST, PUT, PATCH, DELETE) from a browser are refused unless same-origin: an `Origin`
 *    other than the Host served, `Origin: null`, or `Sec-Fetch-Site: cross-site|same-site` gets 403
 *    (rule `same_origin`). Clients that are not browsers send no Origin and are unaffected.
 * Only application/json bodies are parsed (415 otherwise, see bootstrap.ts), so a plain HTML form
 * cannot even reach a handler. With API keys neither check applies: a browser cannot attach the
 * key to a cross-site request, and a deployment behind a load balancer has its own Host names.
 */
const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/** True when a Host header names a loopback address (any port). */
export function isLoopbackHostHeader(host: string): boolean {
  return LOOPBACK_HOST.test(host.trim());
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface OpenModeRefusal {
  status: 403;
  body: { error: 'forbidden'; errors: { field: string; rule: string; message: string }[] };
}

const refusal = (field: string, rule: string, message: string): OpenModeRefusal => ({ status: 403, body: { error: 'forbidden', errors: [{ field, rule, message }] } });

/** The refusal for a request in open mode, or null when it may be served. */
export function openModeRefusal(method: string, headers: Record<string, string | string[] | undefined>): OpenModeRefusal | null {
  const host = headers.host;
  if (typeof host === 'string' && !isLoopbackHostHeader(host))
    return refusal(
      'host',
      'loopback_host',
      'without API_KEYS the service answers only requests addressed to a loopback Host (localhost, 127.0.0.1, [::1]); set API_KEYS to serve other names',
    );
  if (!WRITES.has(method.toUpperCase())) return null;
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site')
    return refusal('origin', 'same_origin', 'without API_KEYS, writes from another web site are refused (Sec-Fetch-Site)');
  const origin = headers.origin;
  if (origin === undefined) return null;
  let originHost: string | null = null;
  try {
    const u = new URL(String(origin));
    originHost = u.protocol === 'http:' || u.protocol === 'https:' ? u.host.toLowerCase() : null;
  } catch {
    originHost = null;
  }
  if (originHost === null || typeof host !== 'string' || originHost !== host.trim().toLowerCase())
    return refusal('origin', 'same_origin', 'without API_KEYS, writes from a web page of another origin are refused');
  return null;
}
