import fc from 'fast-check';
import type { Catalog } from './catalog/catalog';
import type { IdentifiedSpaceEvent } from './events';
import { DAY_MS } from './period';
import {
  DEFAULT_CORRECTION_WINDOW_MS,
  SPACE_SNAPSHOT_SCHEMA,
  USES_KEPT_MAX,
  type DecideContext,
  type Decision,
  type SpaceCommand,
  type SpaceState,
  type OlderUse,
  compactSpace,
  decideAll,
  foldSpace,
  inboundFingerprint,
  initialSpaceState,
  olderUseOf,
  olderUsesWanted,
  recordedFingerprint,
  recordedIdsToLookUp,
  snapshotOfSpace,
  spaceFromSnapshot,
} from './space';
import { type Step, T0, lifeArb, subscriptionCommand, subscriptionSpecArb, usageCommand, validUsageArb } from './testing/arbitraries';
import { periodAt } from './timeline';
import { SPACE_ID, at, canonicalState, defaultCatalog, generate, given, history, nameAsEventId, subscribe } from './testing/given-when-then';

const catalog: Catalog = defaultCatalog();
const W = DEFAULT_CORRECTION_WINDOW_MS;

/** What `olderUsesWanted` asks for, read from the recorded events (a model of the stream: revision = index). */
function olderUsesIn(state: SpaceState, commands: SpaceCommand[], ctx: DecideContext, recorded: readonly IdentifiedSpaceEvent[]): OlderUse[] | undefined {
  const wanted = olderUsesWanted(state, commands, ctx);
  if (wanted === null) return undefined;
  const out: OlderUse[] = [];
  for (let rev = wanted.fromRevision; rev < recorded.length; rev++) {
    const use = olderUseOf(state, wanted, recorded[rev]);
    if (use) out.push(use);
  }
  return out;
}

describe('the corrections window', () => {
  const h = () => history([subscribe('pro', 'monthly', '2025-01-15T00:00:00Z')]);

  it('refuses usage older than the window with rule too_late, naming the window', () => {
    const then = given(h()).when(generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-20T00:00:00Z' }), { now: '2025-02-24T00:00:01Z' });
    then.thenRejects('occurredAt', 'too_late');
    if (then.decision.outcome === 'rejected') expect(then.decision.rejection.message).toMatch(/35 days/);
  });

  it('accepts usage at the window edge, counted in the period it occurred in (not the current one)', () => {
    given(h())
      .when(generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-20T00:00:00Z' }), { now: '2025-02-24T00:00:00Z' })
      .thenMatch([{ type: 'GenerationRecorded', data: { periodStart: '2025-01-15T00:00:00.000Z', periodEnd: '2025-02-15T00:00:00.000Z' } }]);
  });

  it('a window of another length is the context’s (CORRECTION_WINDOW_DAYS)', () => {
    const input = generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-20T00:00:00Z' });
    const ctx = { now: at('2025-03-30T00:00:00Z'), catalog, eventId: nameAsEventId };
    expect(decideAll(foldSpace(SPACE_ID, h()), [input], { ...ctx, correctionWindowMs: 90 * DAY_MS }).decisions[0].outcome).toBe('accepted');
    expect(decideAll(foldSpace(SPACE_ID, h()), [input], ctx).decisions[0].outcome).toBe('rejected');
  });

  it('a redelivery older than the window is a duplicate when the store holds its recorded event', () => {
    const events = history([generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-20T00:00:00Z', eventId: 'old-1' })], { after: h() });
    const state = compactSpace(foldSpace(SPACE_ID, events), at('2025-06-01T00:00:00Z'), W);
    expect(state.recent.has('old-1')).toBe(false);
    const again = generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-20T00:00:00Z', eventId: 'old-1' });
    const ctx = { now: at('2025-06-01T00:00:00Z'), catalog, eventId: nameAsEventId };
    // the state asks the store about exactly that id
    const ask = recordedIdsToLookUp(state, [again], ctx);
    expect([...ask]).toEqual([[`${SPACE_ID}/generation/old-1`, 'old-1']]);
    expect(decideAll(state, [again], { ...ctx, alreadyRecorded: new Map([['old-1', inboundFingerprint(again)]]) }).decisions[0]).toEqual({ outcome: 'duplicate', events: [] });
    // unknown to the store: too late
    expect(decideAll(state, [again], ctx).decisions[0]).toMatchObject({ outcome: 'rejected', rejection: { rule: 'too_late' } });
  });

  it('a subscription back-dated beyond the window keeps its anchor but moves only uses inside the window', () => {
    // usage on Jan 20 (old by the time the change arrives) and Mar 20 (inside the window)
    const events = history(
      [
        [generate({ feature: 'ai_backgrounds', generations: 1, occurredAt: '2025-01-20T00:00:00Z', eventId: 'jan' }), '2025-01-20T00:00:00Z'],
        [generate({ feature: 'ai_backgrounds', generations: 2, occurredAt: '2025-03-20T00:00:00Z', eventId: 'mar' }), '2025-03-20T00:00:00Z'],
      ],
      { after: h() },
    );
    const state = compactSpace(foldSpace(SPACE_ID, events), at('2025-04-01T00:00:00Z'), W);
    // re-anchored to weekly from Feb 3 (before the window, which starts Feb 25): the March use moves
    // to the weekly period that contains it; January stays in the period it was recorded in
    given(events).when(subscribe('pro', 'weekly', '2025-02-03T00:00:00Z'), { now: '2025-04-01T00:00:00Z' }).thenMatch([
      { type: 'SubscriptionChanged', data: { anchorAt: '2025-02-03T00:00:00.000Z', reanchored: true } },
    ]);
    const decided = decideAll(state, [subscribe('pro', 'weekly', '2025-02-03T00:00:00Z')], { now: at('2025-04-01T00:00:00Z'), catalog, eventId: nameAsEventId });
    const moves = (decided.events[0].data as { moves: { periodStart: string; usageEvents: number }[] }).moves;
    expect(moves).toEqual([
      { periodStart: '2025-03-15T00:00:00.000Z', used: { ai_image_credits: -2 * 2, ai_video_credits: 0, batch_exports: 0 }, usageEvents: -1 },
      { periodStart: '2025-03-17T00:00:00.000Z', periodEnd: '2025-03-24T00:00:00.000Z', used: { ai_image_credits: 2 * 2, ai_video_credits: 0, batch_exports: 0 }, usageEvents: 1 },
    ]);
    // the January period keeps its usage and its end as recorded
    const after = decided.state;
    expect(after.periods.get(at('2025-01-15T00:00:00Z'))).toBeUndefined(); // compacted: it ended before the window
  });
});

describe('bounded state', () => {
  it('a Space metering every hour for 400 days keeps only the window: uses, periods and thresholds', () => {
    let state = foldSpace(SPACE_ID, history([subscribe('pro', 'monthly', '2024-01-01T00:00:00Z')]));
    const start = at('2024-01-01T00:00:00Z');
    const hour = 3_600_000;
    let maxRecent = 0;
    for (let i = 0; i < 400 * 24; i++) {
      const now = start + i * hour;
      const r = decideAll(state, [generate({ feature: 'templates', generations: 1, occurredAt: new Date(now).toISOString(), eventId: `h${i}` })], { now, catalog, eventId: nameAsEventId });
      expect(r.decisions[0].outcome).toBe('accepted');
      state = compactSpace(r.state, now, W);
      maxRecent = Math.max(maxRecent, state.recent.size);
    }
    // the window holds 35 days of hourly uses (plus at most one compaction step)
    expect(maxRecent).toBeLessThanOrEqual(35 * 24 + 2);
    expect(state.periods.size).toBeLessThanOrEqual(3);
    expect(state.version).toBe(1 + 400 * 24);
  });
  it('a Space with more uses inside the window than USES_KEPT_MAX keeps a bounded tail; the store answers for the rest (dedupe, a back-dated change)', () => {
    const start = at('2025-01-01T00:00:00Z');
    const every = 240_000; // a use every 4 minutes: 12,600 inside the 35-day window
    const steps = 50 * 360;
    const recorded: IdentifiedSpaceEvent[] = [];
    let bounded = foldSpace(SPACE_ID, history([subscribe('pro', 'monthly', '2025-01-01T00:00:00Z')]));
    let whole = foldSpace(SPACE_ID, history([subscribe('pro', 'monthly', '2025-01-01T00:00:00Z')]));
    recorded.push(...history([subscribe('pro', 'monthly', '2025-01-01T00:00:00Z')]).map((e, i) => ({ ...e, id: `sub-${i}` })));
    let maxKept = 0;
    let maxBody = 0;
    for (let i = 0; i < steps; i++) {
      const now = start + i * every;
      const command = generate({ feature: 'templates', generations: 1, occurredAt: new Date(now).toISOString(), eventId: `u${i}` });
      const r = decideAll(bounded, [command], { now, catalog, eventId: nameAsEventId });
      recorded.push(...r.events);
      bounded = compactSpace(r.state, now, W);
      whole = compactSpace(decideAll(whole, [command], { now, catalog, eventId: nameAsEventId }).state, now, W, false, Number.POSITIVE_INFINITY);
      maxKept = Math.max(maxKept, bounded.recent.size);
      if (i % 5_000 === 0) maxBody = Math.max(maxBody, snapshotOfSpace(bounded, W).length);
    }
    const now = start + steps * every;
    expect(whole.recent.size).toBeGreaterThan(12_000);
    expect(maxKept).toBeLessThanOrEqual(USES_KEPT_MAX + 1);
    expect(bounded.droppedRevs.size).toBeLessThanOrEqual(36);
    expect(maxBody).toBeLessThan(960 * 1024);
    // A redelivery of a dropped use inside the window: the state asks the store for its id.
    const old = generate({ feature: 'templates', generations: 1, occurredAt: new Date(start + 30 * DAY_MS).toISOString(), eventId: `u${30 * 360}` });
    const ctx = { now, catalog, eventId: nameAsEventId };
    expect([...recordedIdsToLookUp(whole, [old], ctx).values()]).toEqual([]);
    expect([...recordedIdsToLookUp(bounded, [old], ctx).values()]).toEqual([`u${30 * 360}`]);
    // A change back-dated 20 days: the same event from the bounded state with the uses read back, and from the whole one.
    const change = subscribe('enterprise', 'weekly', new Date(now - 20 * DAY_MS).toISOString(), { eventId: 'late-weekly', customLimits: { ai_image_credits: 100, ai_video_credits: 10, batch_exports: 10 } });
    expect(() => decideAll(bounded, [change], ctx)).toThrow(/olderUses/);
    const wanted = olderUsesWanted(bounded, [change], ctx);
    expect(wanted).not.toBeNull();
    const fromWhole = decideAll(whole, [change], { ...ctx, olderUses: [] });
    const fromBounded = decideAll(bounded, [change], { ...ctx, olderUses: olderUsesIn(bounded, [change], ctx, recorded) });
    expect(fromBounded.events).toEqual(fromWhole.events);
    expect((fromWhole.events[0].data as { moves: unknown[] }).moves.length).toBeGreaterThan(0);
  });
});

describe('a subscription change on a state that dropped uses from its tail', () => {
  const KEPT = 10;
  /** Hourly uses from Jan 1 for 10 days, decided and trimmed to KEPT uses as they come, next to the same state untrimmed. */
  function heavy() {
    const recorded: IdentifiedSpaceEvent[] = history([subscribe('pro', 'monthly', '2025-01-01T00:00:00Z')]).map((e, i) => ({ ...e, id: `sub-${i}` }));
    let bounded = foldSpace(SPACE_ID, recorded);
    let whole = foldSpace(SPACE_ID, recorded);
    const start = at('2025-01-01T00:00:00Z');
    const step = (now: number, command: SpaceCommand) => {
      const ctx = { now, catalog, eventId: nameAsEventId };
      const r = decideAll(bounded, [command], { ...ctx, alreadyRecorded: new Map() });
      expect(r.decisions[0].outcome).toBe('accepted');
      recorded.push(...r.events);
      bounded = compactSpace(r.state, now, W, false, KEPT);
      whole = compactSpace(decideAll(whole, [command], ctx).state, now, W, false, Number.POSITIVE_INFINITY);
    };
    for (let i = 0; i < 240; i++) step(start + i * HOUR, generate({ feature: 'templates', generations: 1, occurredAt: new Date(start + i * HOUR).toISOString(), eventId: `u${i}` }));
    return { recorded, step, state: () => ({ bounded, whole }) };
  }
  const HOUR = 3_600_000;
  /** Enterprise weekly: another reset family, so the change re-anchors the periods at its effectiveAt. */
  const weekly = (effectiveAt: string, eventId: string) =>
    subscribe('enterprise', 'weekly', effectiveAt, { eventId, customLimits: { ai_image_credits: 1000, ai_video_credits: 100, batch_exports: 100 } });
  const NOW = at('2025-01-11T00:00:00Z');
  /** The change decided on both states (the bounded one with what it asks the stream for); its events, equal. */
  function decideBoth(h: ReturnType<typeof heavy>, change: SpaceCommand) {
    const { bounded, whole } = h.state();
    const ctx = { now: NOW, catalog, eventId: nameAsEventId };
    const wanted = olderUsesWanted(bounded, [change], ctx);
    const fromWhole = decideAll(whole, [change], ctx);
    const fromBounded = decideAll(bounded, [change], { ...ctx, olderUses: olderUsesIn(bounded, [change], ctx, h.recorded) });
    expect(fromBounded.events).toEqual(fromWhole.events);
    return { wanted, moves: (fromWhole.events[0].data as { moves: { periodStart: string; periodEnd?: string | null; usageEvents: number }[] }).moves };
  }

  it('effective now: nothing is read back (the interrupted period keeps its uses, its new end is recorded from the uses the state holds)', () => {
    const h = heavy();
    expect(h.state().bounded.recent.size).toBeLessThanOrEqual(KEPT);
    expect(h.state().bounded.keptFrom).toBeGreaterThan(at('2025-01-10T00:00:00Z'));
    const change = weekly('2025-01-11T00:00:00Z', 'now-weekly');
    const { wanted, moves } = decideBoth(h, change);
    expect(wanted).toBeNull();
    expect(moves).toEqual([expect.objectContaining({ periodStart: '2025-01-01T00:00:00.000Z', periodEnd: '2025-01-18T00:00:00.000Z', usageEvents: 0 })]);
  });

  it('effective later this period: nothing is read back either', () => {
    const { wanted } = decideBoth(heavy(), weekly('2025-01-20T00:00:00Z', 'later-weekly'));
    expect(wanted).toBeNull();
  });

  it('back-dated into the dropped uses, less than a new period back: nothing is read back (the carry rule keeps them in their period)', () => {
    const { wanted, moves } = decideBoth(heavy(), weekly('2025-01-05T00:00:00Z', 'back-weekly'));
    expect(wanted).toBeNull();
    expect(moves).toEqual([expect.objectContaining({ periodStart: '2025-01-01T00:00:00.000Z', periodEnd: '2025-01-12T00:00:00.000Z', usageEvents: 0 })]);
  });

  it('back-dated into the dropped uses, more than a new period back: they are read back and moved', () => {
    const { wanted, moves } = decideBoth(heavy(), weekly('2025-01-02T00:00:00Z', 'back-weekly'));
    expect(wanted).not.toBeNull();
    expect(moves.find((m) => m.periodStart === '2025-01-09T00:00:00.000Z')?.usageEvents).toBe(48);
  });

  it('back-dated into the dropped uses, with a late use held from before the change: still read back', () => {
    const h = heavy();
    // A late use dated Jan 1, held by the state (newer than its trim): it is in the period both before and after the change.
    h.step(NOW - HOUR, generate({ feature: 'templates', generations: 1, occurredAt: '2025-01-01T00:30:00Z', eventId: 'late' }));
    expect(h.state().bounded.recent.has('late')).toBe(true);
    const { wanted, moves } = decideBoth(h, weekly('2025-01-02T00:00:00Z', 'back-weekly'));
    expect(wanted).not.toBeNull();
    expect(moves.find((m) => m.periodStart === '2025-01-09T00:00:00.000Z')?.usageEvents).toBe(48);
  });

  it('a decision that needs the dropped uses and is not given them throws', () => {
    const { bounded } = heavy().state();
    const ctx = { now: NOW, catalog, eventId: nameAsEventId };
    expect(() => decideAll(bounded, [weekly('2025-01-02T00:00:00Z', 'back-weekly')], ctx)).toThrow(/olderUses/);
    expect(decideAll(bounded, [weekly('2025-01-11T00:00:00Z', 'now-weekly')], ctx).decisions[0].outcome).toBe('accepted');
  });
});

describe('compaction and snapshots change no decision (properties)', () => {
  /**
   * Decides each step at its clock. `compact` compacts before every decision (and `trimmed` also
   * keeps at most 2 uses: every other use is dropped from the tail), and asks a model of the store
   * for old ids and for the uses dropped from the tail (the stream as recorded: revision = index).
   */
  function run(steps: Step[], compact: boolean | 'trimmed') {
    let state: SpaceState = initialSpaceState(SPACE_ID);
    const stored = new Map<string, number>();
    const decisions: Decision[] = [];
    const events: IdentifiedSpaceEvent[] = [];
    for (const s of steps) {
      const ctx = { now: s.now, catalog, eventId: nameAsEventId };
      if (compact) {
        compactSpace(state, s.now, W, true, compact === 'trimmed' ? 2 : undefined);
        // and through a snapshot: what a cold load gives
        state = spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA, snapshotOfSpace(state, W), W)!;
      }
      const ask = recordedIdsToLookUp(state, [s.command], ctx);
      const alreadyRecorded = new Map([...ask].filter(([id]) => stored.has(id)).map(([id, inbound]) => [inbound, stored.get(id)!] as [string, number]));
      const r = decideAll(state, [s.command], { ...ctx, alreadyRecorded, olderUses: olderUsesIn(state, [s.command], ctx, events) });
      state = r.state;
      decisions.push(...r.decisions);
      for (const e of r.events) stored.set(e.id, recordedFingerprint(e));
      events.push(...r.events);
    }
    return { decisions, events, state };
  }

  it('the same decisions and events with the state compacted and reloaded from a snapshot before every step, re-deliveries included', () => {
    fc.assert(
      fc.property(lifeArb(30), fc.array(fc.nat(), { maxLength: 8 }), (life, picks) => {
        // re-deliver some inbound steps at the end, up to a year later (old duplicates)
        const inbound = life.filter((s) => s.command.type !== 'ResetDuePeriods');
        const last = life.length ? life[life.length - 1].now : 0;
        const again = inbound.length ? picks.map((p, i) => ({ command: inbound[p % inbound.length].command, now: last + i * 40 * DAY_MS })) : [];
        const steps = [...life, ...again];
        const plain = run(steps, false);
        for (const compacted of [run(steps, true), run(steps, 'trimmed')]) {
          expect(compacted.decisions).toEqual(plain.decisions);
          expect(compacted.events).toEqual(plain.events);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a change back-dated to the very start of an earlier period, settled or not, decides the same with the state compacted or not', () => {
    fc.assert(
      fc.property(
        lifeArb(20),
        subscriptionSpecArb,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 60 * DAY_MS }),
        fc.array(validUsageArb, { minLength: 1, maxLength: 4 }),
        (life, sub, where, gap, usage) => {
          const now = (life.at(-1)?.now ?? T0) + gap;
          // the start of the period (as the Space's timeline has it) at an instant anywhere in its life
          const start = periodAt(run(life, false).state.timeline, T0 + Math.floor(where * (now - T0))).start;
          const steps: Step[] = [
            ...life,
            { command: subscriptionCommand(sub, 'late-change', Math.max(T0, start)), now },
            ...usage.map((u, i) => ({ command: usageCommand(u, `after-${i}`, now), now })),
          ];
          const plain = run(steps, false);
          for (const compacted of [run(steps, true), run(steps, 'trimmed')]) {
            expect(compacted.decisions).toEqual(plain.decisions);
            expect(compacted.events).toEqual(plain.events);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  const usageStep = (over: Parameters<typeof generate>[0], now: string): Step => ({ command: generate(over), now: at(now) });
  const changeStep = (cmd: ReturnType<typeof subscribe>, now: string): Step => ({ command: cmd, now: at(now) });
  const limits = { ai_image_credits: 100, ai_video_credits: 10, batch_exports: 10 };
  /** Decides the steps twice, with the state as folded and with it compacted and reloaded before every step: the same decisions and events. Returns the first. */
  const decidedAlike = (steps: Step[]) => {
    const plain = run(steps, false);
    for (const compacted of [run(steps, true), run(steps, 'trimmed')]) {
      expect(compacted.decisions).toEqual(plain.decisions);
      expect(compacted.events).toEqual(plain.events);
    }
    return plain;
  };
  /** Enterprise weekly from Wed Jan 1 (10 video credits a week), then `generations` video generations (5 credits each) at `occurredAt`, decided then. */
  const enterpriseThenVideo = (generations: number, occurredAt: string): Step[] => [
    changeStep(subscribe('enterprise', 'weekly', '2025-01-01T00:00:00Z', { eventId: 'ent', customLimits: limits }), '2025-01-01T00:00:00Z'),
    usageStep({ feature: 'ai_video', medium: 'video', generations, occurredAt, eventId: 'video' }, occurredAt),
  ];
  /** Decided on Mar 5 (the window starts Jan 29): a change to `plan` weekly from `effectiveAt`. */
  const onMarch5 = (plan: 'free' | 'pro', effectiveAt: string): Step => changeStep(subscribe(plan, 'weekly', effectiveAt, { eventId: plan }), '2025-03-05T00:00:00Z');
  /** One video generation (5 credits) on Mar 5. */
  const marchVideo = usageStep({ feature: 'ai_video', medium: 'video', generations: 1, occurredAt: '2025-03-05T00:00:00Z', eventId: 'march' }, '2025-03-05T00:00:00Z');

  it('a change inside the window that joins free keeps the interrupted period’s usage, also once that period’s old end has left the window', () => {
    // enterprise weekly from Wed Jan 1; 16 image credits on Jan 2 (period Jan 1 - Jan 8)
    const steps: Step[] = [
      changeStep(subscribe('enterprise', 'weekly', '2025-01-01T00:00:00Z', { eventId: 'ent', customLimits: limits }), '2025-01-01T00:00:00Z'),
      usageStep({ feature: 'ai_backgrounds', generations: 8, occurredAt: '2025-01-02T00:00:00Z', eventId: 'jan2' }, '2025-01-02T00:00:00Z'),
      // on Feb 10 (window from Jan 6) billing says: free from Jan 7. The free period carries Jan 1's
      // usage (16 of 25); the Jan 2 use is older than the window, so nothing moves and no row changes.
      changeStep(subscribe('free', 'weekly', '2025-01-07T00:00:00Z', { eventId: 'free' }), '2025-02-10T00:00:00Z'),
      // on Feb 20 the window starts Jan 16, after the period's old end (Jan 8): 6 more credits make 22 of 25
      usageStep({ feature: 'ai_backgrounds', generations: 3, occurredAt: '2025-02-20T00:00:00Z', eventId: 'feb20' }, '2025-02-20T00:00:00Z'),
    ];
    const plain = decidedAlike(steps);
    expect(plain.events.filter((e) => e.type === 'ThresholdCrossed').map((e) => [e.data.periodStart, e.data.pool, e.data.threshold, e.data.used])).toEqual([
      ['2025-01-01T00:00:00.000Z', 'ai_image_credits', 80, 22],
    ]);
  });

  it('a change back-dated into a period that had ended by the window’s start carries none of its usage: a fresh period at effectiveAt', () => {
    // enterprise weekly from Wed Jan 1; 5 video credits on Jan 28 (period Jan 22 - Jan 29)
    const steps: Step[] = [
      ...enterpriseThenVideo(1, '2025-01-28T23:00:00Z'),
      // on Mar 5 (window from Jan 29, the settled period's end) billing says: free from Jan 28 23:30
      onMarch5('free', '2025-01-28T23:30:00Z'),
      marchVideo,
    ];
    const plain = decidedAlike(steps);
    const [enterprise, free] = plain.events.filter((e) => e.type === 'SubscriptionChanged');
    expect(free.data).toMatchObject({ reanchored: true, anchorAt: '2025-01-28T23:30:00.000Z' });
    expect(free.data).not.toHaveProperty('keepsUsage');
    expect(enterprise.data).toHaveProperty('keepsUsage', true);
    // the March use alone reaches the free plan's 5 video credits, in the period that started at the change
    expect(plain.events.filter((e) => e.type === 'ThresholdCrossed').map((e) => [e.data.periodStart, e.data.threshold, e.data.used])).toEqual([
      ['2025-01-28T23:30:00.000Z', 80, 5],
      ['2025-01-28T23:30:00.000Z', 100, 5],
    ]);
  });

  it('a change back-dated to the very start of a settled period clears that period’s record: its usage and thresholds do not count in the period that now starts there', () => {
    // enterprise weekly from Wed Jan 1; 20 video credits on Jan 23 (period Jan 22 - Jan 29): 80 % and 100 % fire
    const steps: Step[] = [
      ...enterpriseThenVideo(4, '2025-01-23T00:00:00Z'),
      // on Mar 5 (window from Jan 29, the settled period's end) billing says: free from Jan 22, the
      // settled period's own start. The free period starts at that same instant.
      onMarch5('free', '2025-01-22T00:00:00Z'),
      // 5 video credits: all of the free plan's 5
      marchVideo,
    ];
    // the same whether the state was compacted before the change (its record of Jan 22 already gone) or not
    const plain = decidedAlike(steps);
    const free = plain.events.filter((e) => e.type === 'SubscriptionChanged')[1];
    expect(free.data).toMatchObject({ effectiveAt: '2025-01-22T00:00:00.000Z', clearsPeriod: '2025-01-22T00:00:00.000Z' });
    expect(free.data).not.toHaveProperty('keepsUsage');
    // the free period's own usage (5 of 5) fires both thresholds; the settled 20 credits are not in it
    expect(plain.events.filter((e) => e.type === 'ThresholdCrossed').map((e) => [e.data.periodStart, e.data.periodEnd, e.data.threshold, e.data.used])).toEqual([
      ['2025-01-22T00:00:00.000Z', '2025-01-29T00:00:00.000Z', 80, 20],
      ['2025-01-22T00:00:00.000Z', '2025-01-29T00:00:00.000Z', 100, 20],
      ['2025-01-22T00:00:00.000Z', null, 80, 5],
      ['2025-01-22T00:00:00.000Z', null, 100, 5],
    ]);
    expect(plain.state.periods.get(at('2025-01-22T00:00:00Z'))?.used.ai_video_credits).toBe(5);
  });

  it('a change back-dated into a settled period clears nothing when the period containing the window’s start keeps its start', () => {
    const steps: Step[] = [
      ...enterpriseThenVideo(4, '2025-01-23T00:00:00Z'),
      // weekly again from Jan 22: the window (from Jan 29) starts in the period Jan 29 - Feb 5 before and after
      onMarch5('pro', '2025-01-22T00:00:00Z'),
    ];
    const pro = run(steps, false).events.filter((e) => e.type === 'SubscriptionChanged')[1];
    expect(pro.data).toMatchObject({ effectiveAt: '2025-01-22T00:00:00.000Z' });
    expect(pro.data).not.toHaveProperty('clearsPeriod');
    expect(pro.data).not.toHaveProperty('keepsUsage');
  });

  it('a snapshot round-trips the state; another schema, Space or a narrower window is not trusted', () => {
    fc.assert(
      fc.property(lifeArb(25), fc.boolean(), (life, trimmed) => {
        const { state } = run(life, trimmed ? 'trimmed' : false);
        const json = snapshotOfSpace(state, W);
        expect(canonicalState(spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA, json, W)!)).toEqual(canonicalState(state));
        expect(spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA + 1, json, W)).toBeNull();
        expect(spaceFromSnapshot('another', SPACE_SNAPSHOT_SCHEMA, json, W)).toBeNull();
        expect(spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA, json, W + DAY_MS)).toBeNull();
        expect(spaceFromSnapshot(SPACE_ID, SPACE_SNAPSHOT_SCHEMA, 'not json', W)).toBeNull();
      }),
      { numRuns: 100 },
    );
  });
});

describe('one eventId, one fact (properties)', () => {
  it('any altered resend of an accepted input is a conflict and records nothing; an identical one a duplicate, at any age, with the tail of uses trimmed or not', () => {
    fc.assert(
      fc.property(lifeArb(25), fc.nat(), fc.integer({ min: 0, max: 400 }), fc.constantFrom(2, 5_000), (life, pick, laterDays, usesKept) => {
        let state = initialSpaceState(SPACE_ID);
        const stored = new Map<string, number>();
        const recorded: IdentifiedSpaceEvent[] = [];
        const accepted: Step[] = [];
        const decideAt = (st: SpaceState, step: Step) => {
          const ctx = { now: step.now, catalog, eventId: nameAsEventId };
          const ask = recordedIdsToLookUp(st, [step.command], ctx);
          const alreadyRecorded = new Map([...ask].filter(([id]) => stored.has(id)).map(([id, inbound]) => [inbound, stored.get(id)!] as [string, number]));
          return decideAll(st, [step.command], { ...ctx, alreadyRecorded, olderUses: olderUsesIn(st, [step.command], ctx, recorded) });
        };
        for (const s of life) {
          const r = decideAt(state, s);
          state = compactSpace(r.state, s.now, W, false, usesKept);
          recorded.push(...r.events);
          for (const e of r.events) stored.set(e.id, recordedFingerprint(e));
          if (r.decisions[0].outcome === 'accepted' && s.command.type !== 'ResetDuePeriods') accepted.push(s);
        }
        if (accepted.length === 0) return;
        const original = accepted[pick % accepted.length];
        const now = life[life.length - 1].now + laterDays * DAY_MS;
        const altered = structuredClone(original.command);
        if (altered.type === 'RecordGeneration') altered.input.generations += 1;
        else if (altered.type === 'RecordBatchExport') altered.input.userId += '-x';
        else if (altered.type === 'ChangeSubscription') altered.input.effectiveAt = new Date(Date.parse(altered.input.effectiveAt) + 1).toISOString();
        const version = state.version;
        const a = decideAt(compactSpace(state, now, W, false, usesKept), { command: altered, now });
        expect(a.decisions[0].outcome).toBe('conflict');
        expect(a.events).toEqual([]);
        const same = decideAt(state, { command: original.command, now });
        expect(same.decisions[0]).toEqual({ outcome: 'duplicate', events: [] });
        expect(state.version).toBe(version);
      }),
      { numRuns: 150 },
    );
  });
});
