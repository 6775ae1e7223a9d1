import { periodAt } from '@metering/domain';
import { BatchRows, applyEvent, spaceRowNeeded } from './apply-events';
import type { FoldedEvent, SpaceRow, UsageRow } from './balance-read-model';

const SPACE = 'sp1';
const AT = Date.parse('2026-03-10T12:00:00Z');
/** With no subscription the timeline is empty: the domain's period of a use at AT. */
const PERIOD = periodAt([], AT);
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

const generation = (revision: number, recorded: { periodStart?: unknown; periodEnd?: unknown } = { periodStart: iso(PERIOD.start), periodEnd: iso(PERIOD.end) }): FoldedEvent => ({
  id: `g${revision}`,
  streamName: `space-${SPACE}`,
  type: 'GenerationRecorded',
  revision,
  globalPosition: BigInt(revision + 1),
  data: {
    spaceId: SPACE, sourceEventId: `in${revision}`, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 1,
    occurredAt: new Date(AT).toISOString(), batchId: null, platform: null, pool: 'ai_image_credits', unitCost: 2, credits: 2, catalogVersion: 1,
    ...recorded,
  },
});

const reset = (revision: number, periodStart: number): FoldedEvent => ({
  id: `r${revision}`,
  streamName: `space-${SPACE}`,
  type: 'PeriodReset',
  revision,
  globalPosition: BigInt(revision + 1),
  data: { spaceId: SPACE, periodStart: iso(periodStart), periodEnd: null, previousPeriodStart: iso(periodStart - 1), plan: 'free', cycle: 'monthly', limits: {} },
});

/** Stored rows of one Space (row at `revision`; `usage`: its one usage row, if any), counting the reads. */
function storedRows(row: SpaceRow | null, usage: UsageRow | null = null, additive = false) {
  const reads = { space: 0, usage: 0 };
  return {
    reads,
    stored: {
      additive,
      space: (id: string) => {
        reads.space++;
        return id === SPACE && row ? { ...row, timeline: [...row.timeline] } : null;
      },
      usage: (id: string, start: number): UsageRow | null => {
        reads.usage++;
        return usage && id === usage.spaceId && start === usage.periodStart ? { ...usage, used: { ...usage.used } } : null;
      },
    },
  };
}

describe('BatchRows: the Space row is read only when the fold needs it', () => {
  const storedRow: SpaceRow = { spaceId: SPACE, timeline: [], lastResetAt: null, nextResetAt: null, revision: 4 };

  it('uses with recorded periods on a known Space: no Space row read, the revision written alone, usage in the recorded period', () => {
    const { reads, stored } = storedRows(storedRow);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    applyEvent(rows, generation(6));
    expect(reads.space).toBe(0);
    expect(rows.spaceChanges()).toEqual({ full: [], revisionOnly: [{ spaceId: SPACE, revision: 6 }] });
    expect(rows.usageChanges().put).toEqual([
      { spaceId: SPACE, periodStart: PERIOD.start, periodEnd: PERIOD.end, used: { ai_image_credits: 4, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 2, revision: 6 },
    ]);
  });

  it('a reset after uses in the same batch reads the row once and writes it whole, at the last revision', () => {
    const { reads, stored } = storedRows(storedRow);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    applyEvent(rows, reset(6, PERIOD.start));
    applyEvent(rows, generation(7));
    expect(reads.space).toBe(1);
    const { full, revisionOnly } = rows.spaceChanges();
    expect(revisionOnly).toEqual([]);
    expect(full).toEqual([expect.objectContaining({ spaceId: SPACE, revision: 7, lastResetAt: PERIOD.start })]);
  });

  it("a Space's first event (revision 0) makes its row, read or not", () => {
    const { reads, stored } = storedRows(null);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(0));
    expect(reads.space).toBe(1);
    expect(rows.spaceChanges().full).toEqual([expect.objectContaining({ spaceId: SPACE, revision: 0, timeline: [] })]);
  });

  it('a use without a recorded period reads the row and takes the period from its timeline', () => {
    const { reads, stored } = storedRows(storedRow);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5, { periodStart: undefined, periodEnd: undefined }));
    expect(reads.space).toBe(1);
    expect(rows.spaceChanges()).toEqual({ full: [], revisionOnly: [expect.objectContaining({ spaceId: SPACE, revision: 5 })] });
    expect(rows.usageChanges().put).toEqual([expect.objectContaining({ periodStart: PERIOD.start, periodEnd: PERIOD.end })]);
  });

  it('spaceRowNeeded names the events whose fold reads the row (what the PostgreSQL read model loads ahead)', () => {
    expect(spaceRowNeeded(generation(5))).toBe(false);
    expect(spaceRowNeeded(generation(0))).toBe(true);
    expect(spaceRowNeeded(generation(5, { periodStart: undefined }))).toBe(true);
    expect(spaceRowNeeded(reset(5, PERIOD.start))).toBe(true);
    expect(spaceRowNeeded({ type: 'SubscriptionChanged', revision: 3, data: {} })).toBe(true);
    expect(spaceRowNeeded({ type: 'SubscriptionActivated', revision: 3, data: {} })).toBe(true);
    expect(spaceRowNeeded({ type: 'ThresholdCrossed', revision: 3, data: {} })).toBe(false);
  });
});

describe('BatchRows: uses added to a usage row the batch did not read (StoredRows.additive)', () => {
  const storedRow: SpaceRow = { spaceId: SPACE, timeline: [], lastResetAt: null, nextResetAt: null, revision: 4 };
  const storedUsage: UsageRow = { spaceId: SPACE, periodStart: PERIOD.start, periodEnd: PERIOD.end, used: { ai_image_credits: 10, ai_video_credits: 1, batch_exports: 0 }, usageEvents: 5 };

  /** The stored row (10 image credits, 5 events) with two uses of 2 credits, written whole. */
  const expectStoredPlusTwoUsesWrittenWhole = (rows: BatchRows) =>
    expect(rows.usageChanges()).toEqual({
      put: [{ spaceId: SPACE, periodStart: PERIOD.start, periodEnd: PERIOD.end, used: { ai_image_credits: 14, ai_video_credits: 1, batch_exports: 0 }, usageEvents: 7, revision: 6 }],
      added: [],
      deleted: [],
    });

  it('additive: the uses are counted from zero, nothing read, written as counts to add', () => {
    const { reads, stored } = storedRows(storedRow, storedUsage, true);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    applyEvent(rows, generation(6));
    expect(reads).toEqual({ space: 0, usage: 0 });
    expect(rows.usageChanges()).toEqual({
      put: [],
      added: [{ spaceId: SPACE, periodStart: PERIOD.start, periodEnd: PERIOD.end, used: { ai_image_credits: 4, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 2, revision: 6 }],
      deleted: [],
    });
  });

  it('not additive: the stored row is read once and written whole', () => {
    const { reads, stored } = storedRows(storedRow, storedUsage, false);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    applyEvent(rows, generation(6));
    expect(reads.usage).toBe(1);
    expectStoredPlusTwoUsesWrittenWhole(rows);
  });

  it('additive, then the whole usage asked for (a move): the stored row is read once and the counts added to it, written whole', () => {
    const { reads, stored } = storedRows(storedRow, storedUsage, true);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    const whole = rows.space(SPACE).usage(PERIOD.start);
    expect(whole).toEqual({ start: PERIOD.start, end: PERIOD.end, used: { ai_image_credits: 12, ai_video_credits: 1, batch_exports: 0 }, usageEvents: 6 });
    applyEvent(rows, generation(6));
    expect(reads.usage).toBe(1);
    expectStoredPlusTwoUsesWrittenWhole(rows);
  });

  it('additive, with no stored row: the counts are the whole usage', () => {
    const { stored } = storedRows(storedRow, null, true);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    expect(rows.space(SPACE).usage(PERIOD.start)).toEqual({ start: PERIOD.start, end: PERIOD.end, used: { ai_image_credits: 2, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 1 });
    expect(rows.usageChanges().put).toEqual([expect.objectContaining({ usageEvents: 1 })]);
  });

  it('additive, then the period cleared: the row is deleted, nothing added', () => {
    const { stored } = storedRows(storedRow, storedUsage, true);
    const rows = new BatchRows(stored);
    applyEvent(rows, generation(5));
    rows.space(SPACE).setUsage(PERIOD.start, null);
    expect(rows.usageChanges()).toEqual({ put: [], added: [], deleted: [{ spaceId: SPACE, periodStart: PERIOD.start }] });
  });
});
