import {
  DAY_MS,
  WEEK_MS,
  addMonthsClamped,
  iso,
  parseInstant,
  parseStoredInstant,
  periodContaining,
  periodIndexOf,
  periodStartAt,
} from './period';

const t = (s: string) => {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) throw new Error(s);
  return ms;
};

describe('period math', () => {
  describe('monthly starts clamp to the month end without drifting', () => {
    // Each row: anchor, then the expected starts of periods k = 0, 1, 2, ... (from the design rules).
    it.each<[string, string, string[]]>([
      [
        'Jan 31 (non-leap year)',
        '2025-01-31T00:00:00.000Z',
        ['2025-01-31', '2025-02-28', '2025-03-31', '2025-04-30', '2025-05-31', '2025-06-30', '2025-07-31', '2025-08-31', '2025-09-30'],
      ],
      ['Jan 31 (leap year)', '2024-01-31T00:00:00.000Z', ['2024-01-31', '2024-02-29', '2024-03-31', '2024-04-30']],
      [
        'July 15 -> the 15th of every month, across the year end',
        '2025-07-15T00:00:00.000Z',
        ['2025-07-15', '2025-08-15', '2025-09-15', '2025-10-15', '2025-11-15', '2025-12-15', '2026-01-15', '2026-02-15'],
      ],
      ['Mar 30 -> Feb 28 -> Mar 30', '2025-03-30T00:00:00.000Z', ['2025-03-30', '2025-04-30', '2025-05-30', '2025-06-30', '2025-07-30', '2025-08-30', '2025-09-30', '2025-10-30', '2025-11-30', '2025-12-30', '2026-01-30', '2026-02-28', '2026-03-30']],
      ['Aug 31 -> Sep 30 -> Oct 31', '2025-08-31T00:00:00.000Z', ['2025-08-31', '2025-09-30', '2025-10-31', '2025-11-30', '2025-12-31', '2026-01-31', '2026-02-28', '2026-03-31']],
      ['Jan 29 in a non-leap year clamps only in February', '2025-01-29T00:00:00.000Z', ['2025-01-29', '2025-02-28', '2025-03-29']],
      ['the 1st never clamps', '2025-01-01T00:00:00.000Z', ['2025-01-01', '2025-02-01', '2025-03-01', '2025-04-01']],
    ])('%s', (_name, anchor, expectedDays) => {
      const a = t(anchor);
      expectedDays.forEach((day, k) => {
        expect(iso(periodStartAt(a, 'monthly', k))).toBe(`${day}T00:00:00.000Z`);
      });
    });

    it('keeps the anchor time of day', () => {
      const a = t('2025-01-31T17:42:05.123Z');
      expect(iso(addMonthsClamped(a, 1))).toBe('2025-02-28T17:42:05.123Z');
      expect(iso(addMonthsClamped(a, 2))).toBe('2025-03-31T17:42:05.123Z');
    });

    it('a leap-day anchor lands on Feb 28 in common years and Feb 29 again in leap years', () => {
      const a = t('2024-02-29T08:00:00.000Z');
      expect(iso(addMonthsClamped(a, 1))).toBe('2024-03-29T08:00:00.000Z');
      expect(iso(addMonthsClamped(a, 12))).toBe('2025-02-28T08:00:00.000Z');
      expect(iso(addMonthsClamped(a, 13))).toBe('2025-03-29T08:00:00.000Z');
      expect(iso(addMonthsClamped(a, 48))).toBe('2028-02-29T08:00:00.000Z');
    });

    it('goes backwards too (k < 0)', () => {
      const a = t('2025-03-31T00:00:00.000Z');
      expect(iso(periodStartAt(a, 'monthly', -1))).toBe('2025-02-28T00:00:00.000Z');
      expect(iso(periodStartAt(a, 'monthly', -2))).toBe('2025-01-31T00:00:00.000Z');
      expect(iso(periodStartAt(a, 'monthly', -13))).toBe('2024-02-29T00:00:00.000Z');
    });
  });

  describe('periodContaining (monthly)', () => {
    const anchor = t('2025-01-31T10:00:00.000Z');
    it.each<[string, string, string]>([
      ['the anchor itself', '2025-01-31T10:00:00.000Z', '2025-01-31T10:00:00.000Z'],
      ['just before the first reset', '2025-02-28T09:59:59.999Z', '2025-01-31T10:00:00.000Z'],
      ['the reset instant (start is inclusive)', '2025-02-28T10:00:00.000Z', '2025-02-28T10:00:00.000Z'],
      ['Mar 30, still in the Feb 28 period', '2025-03-30T23:00:00.000Z', '2025-02-28T10:00:00.000Z'],
      ['Mar 31 before 10:00, still in the Feb 28 period', '2025-03-31T09:00:00.000Z', '2025-02-28T10:00:00.000Z'],
      ['Mar 31 at 10:00', '2025-03-31T10:00:00.000Z', '2025-03-31T10:00:00.000Z'],
      ['May 1', '2025-05-01T00:00:00.000Z', '2025-04-30T10:00:00.000Z'],
      ['before the anchor', '2024-12-31T10:00:00.000Z', '2024-12-31T10:00:00.000Z'],
    ])('%s', (_name, at, start) => {
      const p = periodContaining(anchor, 'monthly', t(at));
      expect(iso(p.start)).toBe(start);
      expect(p.end).not.toBeNull();
      expect(p.start).toBeLessThanOrEqual(t(at));
      expect(p.end!).toBeGreaterThan(t(at));
      // the period ends where the next one starts
      expect(p.end).toBe(periodContaining(anchor, 'monthly', p.end!).start);
    });

    it('counts k from the anchor', () => {
      expect(periodIndexOf(anchor, 'monthly', t('2025-01-31T10:00:00.000Z'))).toBe(0);
      expect(periodIndexOf(anchor, 'monthly', t('2025-02-28T09:59:59.999Z'))).toBe(0);
      expect(periodIndexOf(anchor, 'monthly', t('2025-02-28T10:00:00.000Z'))).toBe(1);
      expect(periodIndexOf(anchor, 'monthly', t('2026-01-31T10:00:00.000Z'))).toBe(12);
      expect(periodIndexOf(anchor, 'monthly', t('2025-01-31T09:59:59.999Z'))).toBe(-1);
    });
  });

  describe('weekly: exactly 7 days from the instant', () => {
    const anchor = t('2025-03-27T13:45:00.000Z'); // the week crossing the EU DST change: UTC, so still 7 x 24 h
    it.each<[string, string, string, string]>([
      ['the anchor', '2025-03-27T13:45:00.000Z', '2025-03-27T13:45:00.000Z', '2025-04-03T13:45:00.000Z'],
      ['1 ms before the reset', '2025-04-03T13:44:59.999Z', '2025-03-27T13:45:00.000Z', '2025-04-03T13:45:00.000Z'],
      ['the reset', '2025-04-03T13:45:00.000Z', '2025-04-03T13:45:00.000Z', '2025-04-10T13:45:00.000Z'],
      ['10 weeks on', '2025-06-05T14:00:00.000Z', '2025-06-05T13:45:00.000Z', '2025-06-12T13:45:00.000Z'],
      ['before the anchor', '2025-03-27T13:44:00.000Z', '2025-03-20T13:45:00.000Z', '2025-03-27T13:45:00.000Z'],
    ])('%s', (_name, at, start, end) => {
      expect(periodContaining(anchor, 'weekly', t(at))).toEqual({ start: t(start), end: t(end) });
    });

    it('is 7 days long whatever the month', () => {
      for (let k = -3; k < 60; k++) expect(periodStartAt(anchor, 'weekly', k + 1) - periodStartAt(anchor, 'weekly', k)).toBe(WEEK_MS);
      expect(WEEK_MS).toBe(7 * DAY_MS);
    });
  });

  describe('free never ends', () => {
    it.each(['2025-01-01T00:00:00.000Z', '2125-06-01T00:00:00.000Z', '1999-01-01T00:00:00.000Z'])('at %s', (at) => {
      const anchor = t('2025-01-31T10:00:00.000Z');
      expect(periodContaining(anchor, 'never', t(at))).toEqual({ start: anchor, end: null });
    });
  });

  describe('parseInstant', () => {
    it.each([
      ['2025-01-31T10:00:00Z', '2025-01-31T10:00:00.000Z'],
      ['2025-01-31T10:00Z', '2025-01-31T10:00:00.000Z'],
      ['2025-01-31T10:00:00.5Z', '2025-01-31T10:00:00.500Z'],
      ['2025-01-31T10:00:00.123456789Z', '2025-01-31T10:00:00.123Z'],
      ['2025-01-31T12:00:00+02:00', '2025-01-31T10:00:00.000Z'],
      ['2025-01-31T05:00:00-05:00', '2025-01-31T10:00:00.000Z'],
      ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ])('accepts %s', (input, expected) => {
      expect(iso(parseInstant(input))).toBe(expected);
    });

    it.each([
      ['no zone (would be read in the local zone)', '2025-01-31T10:00:00'],
      ['a date only', '2025-01-31'],
      ['not ISO', 'Jan 31 2025 10:00 UTC'],
      ['epoch millis as a string', '1738317600000'],
      ['a number', 1738317600000],
      ['null', null],
      ['month 13', '2025-13-01T00:00:00Z'],
      ['Feb 30 (would roll over to Mar 2)', '2025-02-30T00:00:00Z'],
      ['Feb 29 in a common year', '2025-02-29T00:00:00Z'],
      ['Apr 31', '2025-04-31T00:00:00Z'],
      ['day 0', '2025-04-00T00:00:00Z'],
      ['24:00 (would roll over to the next day)', '2025-01-31T24:00:00Z'],
      ['minute 60', '2025-01-31T10:60:00Z'],
    ])('refuses %s', (_name, input) => {
      expect(parseInstant(input)).toBeNaN();
    });
  });

  describe('parseStoredInstant: Date.parse of a stored instant, read from its digits', () => {
    it('gives what Date.parse gives for toISOString text over many years, every month end and leap day', () => {
      const rnd = (() => {
        let x = 12345;
        return () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      })();
      const from = Date.UTC(1970, 0, 1);
      const to = Date.UTC(2400, 0, 1);
      for (let i = 0; i < 20_000; i++) {
        const s = new Date(from + Math.floor(rnd() * (to - from))).toISOString();
        expect(parseStoredInstant(s)).toBe(Date.parse(s));
      }
      for (const s of ['2024-02-29T23:59:59.999Z', '2000-02-29T00:00:00.000Z', '2025-12-31T23:59:59.999Z', '1970-01-01T00:00:00.000Z', '2025-04-30T12:00:00.001Z']) {
        expect(parseStoredInstant(s)).toBe(Date.parse(s));
      }
    });

    it.each([
      '2025-02-30T00:00:00.000Z', // rolled over (or refused) by Date.parse: the same answer here
      '2025-02-29T00:00:00.000Z',
      '2025-04-31T00:00:00.000Z',
      '2025-13-01T00:00:00.000Z',
      '2025-00-10T00:00:00.000Z',
      '2025-01-00T00:00:00.000Z',
      '2025-01-31T24:00:00.000Z',
      '2025-01-31T10:60:00.000Z',
      '2025-01-31T10:00:60.000Z',
      '0099-01-31T10:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '2025-01-3xT10:00:00.000Z',
      '2025-01-31T10:00:00.00aZ',
      '2025-01-31 10:00:00.000Z',
      '2025-01-31T10:00:00.000+',
      '2025-01-31T10:00:00Z',
      '2025-01-31T12:00:00+02:00',
      '+02025-01-31T10:00:00.000Z',
      'Jan 31 2025 10:00 UTC',
      '',
    ])('leaves %p to Date.parse (same answer, NaN included)', (s) => {
      expect(Object.is(parseStoredInstant(s), Date.parse(s))).toBe(true);
    });
  });
});
