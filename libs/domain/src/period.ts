/**
 * Period math, in UTC, on epoch milliseconds. Pure.
 *
 * - weekly: periods of exactly 7 days from the anchor instant;
 * - monthly: periods start on the anchor's day of month at the anchor's time of day; a day that a
 *   month lacks clamps to its last day, and every start is computed from the anchor itself (never
 *   from the previous start), so Jan 31 -> Feb 28/29 -> Mar 31 -> Apr 30 without drifting;
 * - never: one period from the anchor that never ends.
 */
export type ResetFamily = 'weekly' | 'monthly' | 'never';

export interface Period {
  /** Inclusive start, epoch ms. */
  start: number;
  /** Exclusive end, epoch ms; null when the period never ends. */
  end: number | null;
}

export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days in a month of a year (month0: 0 = January; any integer, and years 0-99 as 1900-1999, as Date.UTC reads them). */
export function daysInMonth(year: number, month0: number): number {
  if (month0 < 0 || month0 > 11 || !Number.isInteger(month0) || !Number.isInteger(year) || (year >= 0 && year < 100)) return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
  if (month0 !== 1) return MONTH_DAYS[month0];
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
}

/** The anchor moved by `months` calendar months, its day clamped to the target month's length. */
export function addMonthsClamped(anchor: number, months: number): number {
  const a = new Date(anchor);
  const total = a.getUTCFullYear() * 12 + a.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month0 = total - year * 12;
  const day = Math.min(a.getUTCDate(), daysInMonth(year, month0));
  const timeOfDay = anchor - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
  return Date.UTC(year, month0, day) + timeOfDay;
}

/** Start of the k-th period after the anchor (k may be negative). */
export function periodStartAt(anchor: number, family: Exclude<ResetFamily, 'never'>, k: number): number {
  return family === 'weekly' ? anchor + k * WEEK_MS : addMonthsClamped(anchor, k);
}

/** Index k of the period (relative to the anchor) that contains t. */
export function periodIndexOf(anchor: number, family: Exclude<ResetFamily, 'never'>, t: number): number {
  if (family === 'weekly') return Math.floor((t - anchor) / WEEK_MS);
  const a = new Date(anchor);
  const d = new Date(t);
  let k = (d.getUTCFullYear() - a.getUTCFullYear()) * 12 + (d.getUTCMonth() - a.getUTCMonth());
  while (addMonthsClamped(anchor, k) > t) k--;
  while (addMonthsClamped(anchor, k + 1) <= t) k++;
  return k;
}

/** The last monthly period computed per anchor: most lookups fall in the same period again. */
const lastMonthly = new Map<number, { start: number; end: number }>();

/** The period, anchored at `anchor`, that contains t. */
export function periodContaining(anchor: number, family: ResetFamily, t: number): Period {
  if (family === 'never') return { start: anchor, end: null };
  if (family === 'monthly') {
    const hit = lastMonthly.get(anchor);
    if (hit && hit.start <= t && t < hit.end) return { start: hit.start, end: hit.end };
  }
  const k = periodIndexOf(anchor, family, t);
  const period = { start: periodStartAt(anchor, family, k), end: periodStartAt(anchor, family, k + 1) };
  if (family === 'monthly') {
    if (lastMonthly.size >= 100_000) lastMonthly.clear();
    lastMonthly.set(anchor, { start: period.start, end: period.end });
  }
  return period;
}

/** Parses an ISO-8601 instant with an explicit zone, from 1970 on; NaN when it is not one. */
export function parseInstant(value: unknown): number {
  if (typeof value !== 'string') return Number.NaN;
  // The longest instant the pattern accepts has 35 characters: longer is not one (and is never kept).
  if (value.length > 35) return Number.NaN;
  // The same instant is parsed several times per event (validation, decision, fingerprint):
  // a small memo of the latest strings (pure: a result depends on the string alone).
  const hit = parsedInstants.get(value);
  if (hit !== undefined) return hit;
  const ms = parseInstantUncached(value);
  if (parsedInstants.size >= INSTANT_MEMO) parsedInstants.clear();
  parsedInstants.set(value, ms);
  return ms;
}

const INSTANT_MEMO = 4096;
const parsedInstants = new Map<string, number>();
const isoTexts = new Map<number, string>();

function parseInstantUncached(value: string): number {
  // The usual text (what toISOString writes, or the same without milliseconds): read from its digits.
  const fast = utcDigits(value);
  if (fast !== undefined) return fast;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  if (!m) return Number.NaN;
  // Date.parse rolls impossible dates over (Feb 30 -> Mar 1, 24:00 -> next day): refuse them.
  const [year, month, day, hour] = [+m[1], +m[2], +m[3], +m[4]];
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month - 1) || hour > 23) return Number.NaN;
  return Date.parse(value);
}

/**
 * `Date.parse` of an instant as this service stores it (`toISOString`: `YYYY-MM-DDTHH:mm:ss.sssZ`):
 * the same number, read from the digits (a fold parses one per usage event; `Date.parse` costs
 * several times more). Any other text, or a date that does not exist (which `Date.parse` may roll
 * over or refuse), goes to `Date.parse` itself.
 */
export function parseStoredInstant(s: string): number {
  return utcDigits(s) ?? Date.parse(s);
}

/**
 * `Date.parse(s)` read from the digits when `s` is `YYYY-MM-DDTHH:mm:ss.sssZ` (toISOString's text)
 * or `YYYY-MM-DDTHH:mm:ssZ`, from 1970 on, every field in range (then both parsers agree);
 * undefined for any other text or value, which its caller leaves to its own parser.
 */
function utcDigits(s: string): number | undefined {
  const n = s.length;
  if (
    (n !== 24 && n !== 20) ||
    s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58 || s.charCodeAt(n - 1) !== 90 || (n === 24 && s.charCodeAt(19) !== 46)
  )
    return undefined;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  const ms = n === 24 ? digits(s, 20, 3) : 0;
  // digits() is -1 for a non-digit; Date.UTC reads years 0-99 as 1900-1999: leave those out.
  if (year < 1970 || month < 1 || month > 12 || day < 1 || (day > 28 && day > daysInMonth(year, month - 1)) || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || ms < 0)
    return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

/**
 * `iso(ms)` for an instant parsed from `text`: `text` itself when it is already that (toISOString's
 * form, every field in range), without formatting it again.
 */
export function isoOfParsed(text: string, ms: number): string {
  return text.length === 24 && utcDigits(text) === ms ? text : iso(ms);
}

/** The decimal number of `n` characters of `s` from `at`; -1 when one of them is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * An instant typed by a person (a CLI flag, a query parameter): an ISO-8601 instant with a zone
 * (`parseInstant`), a bare date (UTC midnight), or epoch milliseconds. NaN when it is none of them.
 */
export function parseInstantInput(raw: string): number {
  if (/^\d{1,16}$/.test(raw)) return Number(raw);
  return parseInstant(/^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : raw);
}

export function iso(ms: number): string {
  // Period bounds and an event's instant are formatted several times per decision: memoised
  // (bounded; new Date(NaN).toISOString() still throws, as before, since failures are not kept).
  let text = isoTexts.get(ms);
  if (text === undefined) {
    text = new Date(ms).toISOString();
    if (isoTexts.size >= INSTANT_MEMO) isoTexts.clear();
    isoTexts.set(ms, text);
  }
  return text;
}
