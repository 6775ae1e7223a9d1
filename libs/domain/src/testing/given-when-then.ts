/**
 * A tiny given / when / then harness for the Space decider, in the shape of a decider
 * specification: given the stored events, when a command is decided at `now`, then these events
 * are recorded (or the input is rejected for this field and rule, or it is a duplicate).
 *
 * Test-only: uses Jest's global `expect`, imports nothing outside libs/domain.
 */
import { type Catalog, type Cycle, type Limits, type Plan, parseCatalog } from '../catalog/catalog';
import defaultCatalogJson from '../catalog/default-catalog.json';
import type { BatchExportedV1, GenerationPerformedV1, SubscriptionChangedV1 } from '../contracts';
import type { IdentifiedSpaceEvent, SpaceEvent } from '../events';
import {
  type DecideContext,
  type Decision,
  type SpaceCommand,
  type SpaceState,
  cloneSpaceState,
  decide,
  decideAll,
  evolve,
  foldSpace,
} from '../space';

export const SPACE_ID = 'space-1';
export const USER_ID = 'user-1';

let parsedDefault: Catalog | undefined;
/** The default catalog, parsed and checked like production does (parsed once; do not mutate it). */
export const defaultCatalog = (): Catalog => (parsedDefault ??= parseCatalog(defaultCatalogJson));

/** Deterministic event id: the name itself (decide builds names from the Space, kind and source id). */
export const nameAsEventId = (name: string): string => name;

/** An ISO instant (with zone) as epoch ms; throws on anything else so typos fail loudly. */
export function at(instant: string | number): number {
  if (typeof instant === 'number') return instant;
  const ms = Date.parse(instant);
  if (!/(Z|[+-]\d{2}:\d{2})$/.test(instant) || Number.isNaN(ms)) throw new Error(`test instant without a zone: ${instant}`);
  return ms;
}

export const isoOf = (ms: number): string => new Date(ms).toISOString();

export interface WhenOptions {
  now: string | number;
  catalog?: Catalog;
}

export function contextFor(opts: WhenOptions): DecideContext {
  return { now: at(opts.now), catalog: opts.catalog ?? defaultCatalog(), eventId: nameAsEventId };
}

// ---------------------------------------------------------------------------------------------
// Builders for inbound inputs and commands

let seq = 0;
const nextEventId = (prefix: string) => `${prefix}-${++seq}`;

export function generationInput(over: Partial<GenerationPerformedV1> & { occurredAt: string }): GenerationPerformedV1 {
  return {
    eventId: over.eventId ?? nextEventId('gen'),
    spaceId: SPACE_ID,
    userId: USER_ID,
    feature: 'ai_backgrounds',
    medium: 'image',
    generations: 1,
    ...over,
  };
}

export function batchInput(over: Partial<BatchExportedV1> & { occurredAt: string }): BatchExportedV1 {
  return {
    eventId: over.eventId ?? nextEventId('batch'),
    spaceId: SPACE_ID,
    userId: USER_ID,
    batchId: over.batchId ?? nextEventId('b'),
    images: 1,
    platform: 'web',
    ...over,
  };
}

export function subscriptionInput(
  over: Partial<SubscriptionChangedV1> & { plan: Plan; cycle: Cycle; effectiveAt: string },
): SubscriptionChangedV1 {
  return { eventId: over.eventId ?? nextEventId('sub'), spaceId: SPACE_ID, ...over };
}

export const generate = (over: Partial<GenerationPerformedV1> & { occurredAt: string }): SpaceCommand => ({
  type: 'RecordGeneration',
  input: generationInput(over),
});

export const exportBatch = (over: Partial<BatchExportedV1> & { occurredAt: string }): SpaceCommand => ({
  type: 'RecordBatchExport',
  input: batchInput(over),
});

export const subscribe = (
  plan: Plan,
  cycle: Cycle,
  effectiveAt: string,
  over: Partial<SubscriptionChangedV1> & { customLimits?: Limits } = {},
): SpaceCommand => ({ type: 'ChangeSubscription', input: subscriptionInput({ plan, cycle, effectiveAt, ...over }) });

export const resetDue = (spaceId = SPACE_ID): SpaceCommand => ({ type: 'ResetDuePeriods', spaceId });
export const reevaluateAllowances = (catalogVersion: number, spaceId = SPACE_ID): SpaceCommand => ({ type: 'ReevaluateAllowances', spaceId, catalogVersion });

/**
 * Stored events produced by deciding each command at its own `now` (defaults to the instant the
 * command is about), after the events in `opts.after` (returned first). Fails when a step is not
 * accepted, so a `given` history is always valid.
 */
export function history(
  steps: ReadonlyArray<SpaceCommand | [SpaceCommand, string | number]>,
  opts: { catalog?: Catalog; spaceId?: string; after?: readonly SpaceEvent[] } = {},
): SpaceEvent[] {
  let state = foldSpace(opts.spaceId ?? SPACE_ID, opts.after ?? []);
  const events: SpaceEvent[] = [...(opts.after ?? [])];
  for (const step of steps) {
    const [command, now] = Array.isArray(step) ? step : [step, instantOf(step)];
    const { decisions, events: out, state: next } = decideAll(state, [command], contextFor({ now, catalog: opts.catalog }));
    if (decisions[0].outcome !== 'accepted')
      throw new Error(`history step ${command.type} was ${decisions[0].outcome}: ${JSON.stringify(decisions[0])}`);
    state = next;
    events.push(...out);
  }
  return events;
}

function instantOf(c: SpaceCommand): string {
  switch (c.type) {
    case 'RecordGeneration':
    case 'RecordBatchExport':
      return c.input.occurredAt;
    case 'ChangeSubscription':
      return c.input.effectiveAt;
    case 'ResetDuePeriods':
    case 'ReevaluateAllowances':
      throw new Error(`${c.type} needs an explicit now: [command, now]`);
  }
}

// ---------------------------------------------------------------------------------------------
// Canonical state (for equality across runs)

/** A plain, order-independent serialisation of a SpaceState. */
export function canonicalState(s: SpaceState): unknown {
  return {
    spaceId: s.spaceId,
    version: s.version,
    seen: [...s.recent.keys(), ...s.subscriptionIds].sort(),
    recent: [...s.recent.values()].map((u) => ({ ...u })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    horizon: s.horizon,
    keptFrom: s.keptFrom,
    droppedRevs: [...s.droppedRevs].sort((a, b) => a[0] - b[0]),
    timeline: s.timeline.map((seg) => ({ ...seg, limits: { ...seg.limits } })),
    periods: [...s.periods.values()]
      .map((p) => ({ start: p.start, end: p.end, used: { ...p.used }, usageEvents: p.usageEvents }))
      .sort((a, b) => a.start - b.start),
    fired: [...s.fired].sort(),
    lastResetAt: s.lastResetAt,
  };
}

// ---------------------------------------------------------------------------------------------
// given / when / then

type Expected = SpaceEvent | IdentifiedSpaceEvent;

export interface Next {
  /** The events the decision recorded. */
  events: IdentifiedSpaceEvent[];
  /** The given events followed by the recorded ones: feed it to the next `given`. */
  history: SpaceEvent[];
  /** The state after folding the recorded events. */
  state: SpaceState;
}

export class Then {
  constructor(
    readonly decision: Decision,
    private readonly givenEvents: readonly SpaceEvent[],
    private readonly before: SpaceState,
  ) {}

  private next(): Next {
    const state = cloneSpaceState(this.before);
    for (const e of this.decision.events) evolve(state, e);
    return { events: this.decision.events, history: [...this.givenEvents, ...this.decision.events], state };
  }

  private expectAccepted(): void {
    if (this.decision.outcome !== 'accepted') throw new Error(`expected accepted, got ${JSON.stringify(this.decision)}`);
  }

  /** Exactly these events, in order. Ids are compared only where the expectation gives one. */
  then(expected: Expected[]): Next {
    this.expectAccepted();
    const actual = this.decision.events.map((e, i) => {
      if (expected[i] && 'id' in expected[i]) return e;
      const { id: _id, ...rest } = e;
      return rest;
    });
    expect(actual).toEqual(expected);
    return this.next();
  }

  /** As many events as expected, each matching its partial expectation (toMatchObject), in order. */
  thenMatch(expected: Array<{ type: SpaceEvent['type']; data?: Record<string, unknown>; id?: string }>): Next {
    this.expectAccepted();
    expect(this.decision.events.map((e) => e.type)).toEqual(expected.map((e) => e.type));
    expect(this.decision.events).toMatchObject(expected);
    return this.next();
  }

  /** Accepted with no event at all. */
  thenNothing(): Next {
    return this.then([]);
  }

  thenRejects(field: string, rule: string): void {
    expect(this.decision.outcome).toBe('rejected');
    if (this.decision.outcome !== 'rejected') return;
    expect({ field: this.decision.rejection.field, rule: this.decision.rejection.rule }).toEqual({ field, rule });
    expect(this.decision.rejection.message.length).toBeGreaterThan(0);
    expect(this.decision.events).toEqual([]);
  }

  thenDuplicate(): void {
    expect(this.decision).toEqual({ outcome: 'duplicate', events: [] });
  }

  /** The eventId was recorded with another payload: refused with rule event_id_conflict, nothing recorded. */
  thenConflict(): void {
    expect(this.decision.outcome).toBe('conflict');
    if (this.decision.outcome !== 'conflict') return;
    expect({ field: this.decision.rejection.field, rule: this.decision.rejection.rule }).toEqual({ field: 'eventId', rule: 'event_id_conflict' });
    expect(this.decision.rejection.message).toMatch(/different payload/);
    expect(this.decision.events).toEqual([]);
  }
}

export interface Given {
  state: SpaceState;
  when(command: SpaceCommand, opts: WhenOptions): Then;
}

/**
 * The Space as folded from `events`. `when` decides a command and checks, every time, that decide
 * left the state untouched (decide must be pure).
 */
export function given(events: readonly SpaceEvent[] = [], spaceId = SPACE_ID): Given {
  const state = foldSpace(spaceId, events);
  return {
    state,
    when(command, opts) {
      const snapshot = canonicalState(state);
      const decision = decide(state, command, contextFor(opts));
      expect(canonicalState(state)).toEqual(snapshot);
      return new Then(decision, events, state);
    },
  };
}
