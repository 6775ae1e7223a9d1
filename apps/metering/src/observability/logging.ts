/**
 * Structured JSON logs (pino) that never carry a secret: known secret-bearing fields are redacted
 * by path, and every line is scrubbed of the secret values the service was given (API keys,
 * database and KurrentDB passwords, the Kafka SASL password), wherever they would appear (an
 * error message, a stack, a connection string).
 */
import type { DestinationStream } from 'pino';
import type { Options } from 'pino-http';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'password',
  '*.password',
  '*.*.password',
  'sasl',
  '*.sasl',
  '*.*.sasl',
  'apiKeys',
  '*.apiKeys',
  'secrets',
  '*.secrets',
  'postgresUrl',
  '*.postgresUrl',
  'kurrentdbUrl',
  '*.kurrentdbUrl',
  'connectionString',
  '*.connectionString',
];

/** Secret values to scrub from every log line; very short values are left (they would blot out ordinary text). */
export function secretValues(env: NodeJS.ProcessEnv): string[] {
  const out = new Set<string>();
  const add = (v: string | undefined | null) => {
    if (v && v.length >= 4) {
      out.add(v);
      const enc = encodeURIComponent(v);
      if (enc !== v) out.add(enc);
    }
  };
  for (const entry of (env.API_KEYS ?? '').split(',')) {
    const eq = entry.indexOf('=');
    if (eq > 0) add(entry.slice(eq + 1).trim());
  }
  for (const name of ['DATABASE_URL', 'KURRENTDB_URL']) {
    const url = env[name];
    if (!url) continue;
    const m = /^[a-z+]+:\/\/([^@/?]*)@/i.exec(url);
    if (m) {
      const colon = m[1].indexOf(':');
      if (colon >= 0) {
        const pw = m[1].slice(colon + 1);
        add(pw);
        try {
          add(decodeURIComponent(pw));
        } catch {
          /* not percent-encoded */
        }
      }
    }
    const q = /[?&]password=([^&]+)/i.exec(url);
    if (q) add(q[1]);
  }
  add(env.KAFKA_SASL_PASSWORD);
  add(env.PGPASSWORD);
  return [...out].sort((a, b) => b.length - a.length);
}

/** A destination that replaces every secret value with [redacted] before writing to stdout. */
export function scrubbingStdout(secrets: readonly string[], out: { write(s: string): unknown } = process.stdout): DestinationStream {
  if (secrets.length === 0) return { write: (s: string) => void out.write(s) };
  // JSON escaping may change a value: scrub the JSON-escaped form as well.
  const forms = [...new Set(secrets.flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))].sort((a, b) => b.length - a.length);
  return {
    write(line: string) {
      let s = line;
      for (const f of forms) if (s.includes(f)) s = s.split(f).join('[redacted]');
      out.write(s);
    },
  };
}

export function pinoHttpOptions(config: { logLevel: string; secrets: readonly string[] }): [Options, DestinationStream] {
  return [
    {
      level: config.logLevel,
      autoLogging: false,
      // No per-request serialisation on the hot path: request logs are off, and lines logged
      // inside a request carry only the request id.
      quietReqLogger: true,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    scrubbingStdout(config.secrets),
  ];
}
