/**
 * Settings of the usage screen and ops console (issue 15), read from the environment by config.ts.
 *
 *  - UI_LINK_SECRET: the HMAC secret of signed usage links and console sessions, >= 32 characters.
 *    Unset: a random secret per process (links and sessions die with the process and are not
 *    shared by replicas; a warning says so at start). Set it when running more than one api replica.
 *  - UI_LINK_TTL_SECONDS: lifetime of a signed link (default 900 = 15 min, 30 s to 24 h).
 *  - UI_FRAME_ANCESTORS: who may frame the Space screen (CSP frame-ancestors source list, default
 *    `*`: the screen is read-only and the link is the authority). The ops console is never framed.
 */
import { randomBytes } from 'node:crypto';

export interface UiSettings {
  linkSecret: Buffer;
  /** 'env' when UI_LINK_SECRET is set, 'random' when generated for this process. */
  linkSecretSource: 'env' | 'random';
  linkTtlSeconds: number;
  frameAncestors: string;
}

export const MIN_LINK_SECRET_LENGTH = 32;
const SOURCE = /^(\*|'self'|'none'|(https?:\/\/)?(\*\.)?[a-z0-9.-]+(:(\d{1,5}|\*))?(\/[^\s;,]*)?|https?:)$/i;

export function uiSettingsFromEnv(env: NodeJS.ProcessEnv, problems: string[]): UiSettings {
  const secretRaw = env.UI_LINK_SECRET;
  let linkSecret: Buffer;
  let linkSecretSource: UiSettings['linkSecretSource'] = 'env';
  if (secretRaw === undefined || secretRaw === '') {
    linkSecret = randomBytes(32);
    linkSecretSource = 'random';
  } else {
    if (secretRaw.length < MIN_LINK_SECRET_LENGTH)
      problems.push(`UI_LINK_SECRET: must be at least ${MIN_LINK_SECRET_LENGTH} characters (e.g. the output of \`openssl rand -base64 48\`); unset, a random secret is made per process`);
    linkSecret = Buffer.from(secretRaw, 'utf8');
  }
  let linkTtlSeconds = 900;
  const ttlRaw = env.UI_LINK_TTL_SECONDS;
  if (ttlRaw !== undefined && ttlRaw !== '') {
    const n = Number(ttlRaw);
    if (!Number.isInteger(n) || n < 30 || n > 86_400) problems.push(`UI_LINK_TTL_SECONDS="${ttlRaw}": must be an integer from 30 to 86400 (seconds)`);
    else linkTtlSeconds = n;
  }
  let frameAncestors = '*';
  const fa = env.UI_FRAME_ANCESTORS;
  if (fa !== undefined && fa.trim() !== '') {
    const sources = fa.trim().split(/\s+/);
    const bad = sources.filter((s) => !SOURCE.test(s));
    if (bad.length)
      problems.push(`UI_FRAME_ANCESTORS="${fa}": a space-separated CSP source list (e.g. "'self' https://app.example.com"); not a source: ${bad.map((b) => `"${b}"`).join(', ')}`);
    else frameAncestors = sources.join(' ');
  }
  return { linkSecret, linkSecretSource, linkTtlSeconds, frameAncestors };
}

/** The secret values to scrub from logs. */
export const uiSecretValues = (env: NodeJS.ProcessEnv): string[] => (env.UI_LINK_SECRET && env.UI_LINK_SECRET.length >= 4 ? [env.UI_LINK_SECRET] : []);
