/**
 * Instants read from their digits (`parseInstant`, `parseStoredInstant`, `isoOfParsed`) and month
 * lengths from a table (`daysInMonth`): the same answers as the Date-based code they replace, on
 * the usual texts, on texts one field out of range, and on other forms of an instant.
 */
import fc from 'fast-check';
import { daysInMonth, iso, isoOfParsed, parseInstant, parseStoredInstant } from './period';

/** What parseInstant answered before its digit reading (the regex, the range checks, Date.parse). */
function parseInstantReference(value: unknown): number {
  if (typeof value !== 'string' || value.length > 35) return Number.NaN;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  if (!m) return Number.NaN;
  const [year, month, day, hour] = [+m[1], +m[2], +m[3], +m[4]];
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate() || hour > 23) return Number.NaN;
  return Date.parse(value);
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');
/** An instant's text in one of the forms producers send, its fields possibly out of range. */
const instantText = fc
  .record({
    year: fc.oneof(fc.integer({ min: 1960, max: 2500 }), fc.constantFrom(1969, 1970, 2000, 2024, 2100, 9999)),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.integer({ min: 0, max: 25 }),
    minute: fc.integer({ min: 0, max: 61 }),
    second: fc.integer({ min: 0, max: 61 }),
    ms: fc.integer({ min: 0, max: 999 }),
    form: fc.constantFrom('ms', 'seconds', 'minutes', 'offset', 'nano', 'lower-z', 'space'),
  })
  .map(({ year, month, day, hour, minute, second, ms, form }) => {
    const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
    const hm = `${pad(hour, 2)}:${pad(minute, 2)}`;
    const hms = `${hm}:${pad(second, 2)}`;
    switch (form) {
      case 'ms': return `${date}T${hms}.${pad(ms, 3)}Z`;
      case 'seconds': return `${date}T${hms}Z`;
      case 'minutes': return `${date}T${hm}Z`;
      case 'offset': return `${date}T${hms}+02:00`;
      case 'nano': return `${date}T${hms}.${pad(ms, 3)}456Z`;
      case 'lower-z': return `${date}T${hms}.${pad(ms, 3)}z`;
      default: return `${date} ${hms}Z`;
    }
  });
/** toISOString of any instant from 1970 to 2400, with or without its milliseconds. */
const isoText = fc.tuple(fc.integer({ min: 0, max: Date.UTC(2400, 0, 1) }), fc.boolean()).map(([t, withMs]) => {
  const s = new Date(t).toISOString();
  return withMs ? s : `${s.slice(0, 19)}Z`;
});

describe('instants read from their digits (properties)', () => {
  it('parseInstant answers what the regex and Date.parse answered, NaN included', () => {
    fc.assert(
      fc.property(fc.oneof(instantText, isoText), (s) => {
        expect(Object.is(parseInstant(s), parseInstantReference(s))).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it('parseStoredInstant answers what Date.parse answers, NaN included', () => {
    fc.assert(
      fc.property(fc.oneof(instantText, isoText), (s) => {
        expect(Object.is(parseStoredInstant(s), Date.parse(s))).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it('isoOfParsed gives iso of the parsed instant, and the text itself when it is already that', () => {
    fc.assert(
      fc.property(fc.oneof(instantText, isoText), (s) => {
        const t = parseInstant(s);
        if (Number.isNaN(t)) return;
        const out = isoOfParsed(s, t);
        expect(out).toBe(iso(t));
        expect(out).toBe(new Date(t).toISOString());
      }),
      { numRuns: 5_000 },
    );
  });

  it('daysInMonth answers what Date.UTC rolls over to, for any year and month index', () => {
    fc.assert(
      fc.property(fc.integer({ min: -400, max: 10_000 }), fc.integer({ min: -30, max: 30 }), (year, month0) => {
        expect(daysInMonth(year, month0)).toBe(new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate());
      }),
      { numRuns: 5_000 },
    );
    for (const [y, m, d] of [[2024, 1, 29], [2025, 1, 28], [2000, 1, 29], [1900, 1, 28], [2100, 1, 28], [2025, 3, 30], [2025, 11, 31]])
      expect(daysInMonth(y, m)).toBe(d);
  });
});
