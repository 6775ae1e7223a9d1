import { type Segment, checkEntitlement, defaultCatalogJson, parseCatalog, periodAt } from '@metering/domain';
import { Entry } from './entitlement-view-entry';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-02T10:00:00Z');
const monthly = (anchorAt: number): Segment[] => [
  { effectiveAt: anchorAt, plan: 'pro', cycle: 'monthly', limits: { ai_image_credits: 125, ai_video_credits: 25, batch_exports: 500 }, anchorAt, family: 'monthly', keepsUsage: true },
];
const weekly = (anchorAt: number): Segment[] => [
  { effectiveAt: anchorAt, plan: 'pro', cycle: 'weekly', limits: { ai_image_credits: 30, ai_video_credits: 6, batch_exports: 125 }, anchorAt, family: 'weekly', keepsUsage: true },
];

describe('entitlement view entry', () => {
  test('its period is the domain\'s periodAt of the row\'s timeline, also after the fold replaced the timeline', () => {
    const first = monthly(NOW - 40 * DAY);
    const entry = new Entry({ spaceId: 's', timeline: first, lastResetAt: null, nextResetAt: null, revision: 0 }, 0, []);
    expect(entry.periodAt(NOW)).toEqual(periodAt(first, NOW));
    // The fold assigns a new timeline (a subscription change): the kept finder must not answer for the old one.
    const second = weekly(NOW - 3 * DAY);
    entry.row.timeline = second;
    expect(periodAt(second, NOW)).not.toEqual(periodAt(first, NOW));
    expect(entry.periodAt(NOW)).toEqual(periodAt(second, NOW));
    expect(entry.periodAt(NOW + 5 * DAY)).toEqual(periodAt(second, NOW + 5 * DAY));
  });

  test('the check over an entry answers as over a plain source of the same timeline and usage', () => {
    const catalog = parseCatalog(defaultCatalogJson);
    const timeline = monthly(NOW - 40 * DAY);
    const start = periodAt(timeline, NOW).start;
    const used = { ai_image_credits: 120, ai_video_credits: 0, batch_exports: 0 };
    const entry = new Entry({ spaceId: 's', timeline, lastResetAt: null, nextResetAt: null, revision: 0 }, start, [{ start, end: null, used, usageEvents: 1 }]);
    const plain = { timeline, usedIn: (p: number) => (p === start ? used : { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 }) };
    for (const generations of [1, 2, 5, 50]) {
      const request = { kind: 'generation' as const, feature: 'ai_backgrounds', generations };
      expect(checkEntitlement(entry, request, NOW, catalog)).toEqual(checkEntitlement(plain, request, NOW, catalog));
    }
  });
});
