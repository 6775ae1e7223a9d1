/**
 * The typed event codec and the v1 integration events (issue 17): what is stored round-trips to the
 * same domain events, old layouts are upcast through the hook, and what other services receive is
 * the v1 contract, field by field, whatever else the stored event carries.
 */
import { type CodecVersions, SPACE_EVENT_SCHEMA, decodeSpaceEvent, decodeSpaceEvents, dataAs, encodeSpaceEvent } from './codec';
import type { IdentifiedSpaceEvent, SpaceEvent } from './events';
import { integrationEnvelopeV1, integrationEventV1 } from './integration-events';
import { decideAll, foldSpace, initialSpaceState } from './space';
import { SPACE_ID, contextFor, generate, resetDue, subscribe } from './testing/given-when-then';

/** A pro weekly Space: subscribed, 26 of 30 credits used (80 % crosses), then a reset two weeks later. */
const life = (): IdentifiedSpaceEvent[] => {
  let state = initialSpaceState(SPACE_ID);
  const out: IdentifiedSpaceEvent[] = [];
  const steps = [
    [subscribe('pro', 'weekly', '2025-01-01T00:00:00Z'), '2025-01-01T00:00:00Z'],
    [generate({ feature: 'ai_backgrounds', generations: 13, occurredAt: '2025-01-02T00:00:00Z' }), '2025-01-02T00:00:00Z'],
    [resetDue(), '2025-01-20T00:00:00Z'],
  ] as const;
  for (const [command, now] of steps) {
    const r = decideAll(state, [command], contextFor({ now }));
    state = r.state;
    out.push(...r.events);
  }
  return out;
};

describe('event codec', () => {
  it('encodes every decided event as its type and JSON data, and decodes it back to the same domain event', () => {
    const events = life();
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['SubscriptionChanged', 'GenerationRecorded', 'ThresholdCrossed', 'PeriodReset']));
    for (const e of events) {
      const stored = JSON.parse(JSON.stringify(encodeSpaceEvent(e)));
      expect(stored).toEqual({ id: e.id, type: e.type, data: e.data }); // version 1: no marker
      const decoded = decodeSpaceEvent(stored)!;
      expect({ type: decoded.type, data: decoded.data }).toEqual({ type: e.type, data: e.data });
    }
    expect(foldSpace(SPACE_ID, decodeSpaceEvents(events.map(encodeSpaceEvent)))).toEqual(foldSpace(SPACE_ID, events));
  });

  it('is null for records that are not Space events, and dataAs refuses another type', () => {
    expect(decodeSpaceEvent({ type: 'DeadLetterRecorded', data: {} })).toBeNull();
    expect(decodeSpaceEvents([{ type: 'CatalogVersionPublished', data: {} }])).toEqual([]);
    const [changed] = life();
    expect(dataAs('SubscriptionChanged', encodeSpaceEvent(changed)).plan).toBe('pro');
    expect(() => dataAs('PeriodReset', encodeSpaceEvent(changed))).toThrow(/expected a PeriodReset event, got SubscriptionChanged/);
  });

  it('upcasts an older stored layout through the hook, step by step, and refuses a layout newer than the reader', () => {
    const v3: CodecVersions = {
      schema: { ...SPACE_EVENT_SCHEMA, GenerationRecorded: 3 },
      upcasters: {
        GenerationRecorded: {
          1: (d) => ({ ...d, channel: d.platform ?? 'unknown' }),
          2: (d) => ({ ...d, channel: String(d.channel).toUpperCase() }),
        },
      },
    };
    const stored = { type: 'GenerationRecorded', data: { spaceId: SPACE_ID, platform: 'web' } };
    expect(decodeSpaceEvent(stored, v3)?.data).toEqual({ spaceId: SPACE_ID, platform: 'web', channel: 'WEB' });
    expect(decodeSpaceEvent({ ...stored, metadata: { schema: 2 }, data: { channel: 'ios' } }, v3)?.data).toEqual({ channel: 'IOS' });
    expect(decodeSpaceEvent({ ...stored, metadata: { schema: 3 }, data: { channel: 'x' } }, v3)?.data).toEqual({ channel: 'x' });
    expect(() => decodeSpaceEvent({ ...stored, metadata: { schema: 4 } }, v3)).toThrow(/newer than this reader/);
    expect(() => decodeSpaceEvent(stored, { ...v3, upcasters: {} })).toThrow(/no upcaster for GenerationRecorded from schema 1/);
  });
});

describe('v1 integration events', () => {
  it('carry exactly the contract fields of what was decided (same JSON as the stored data today)', () => {
    const notified = life().filter((e) => e.type === 'ThresholdCrossed' || e.type === 'PeriodReset');
    expect(notified.length).toBeGreaterThanOrEqual(2);
    for (const e of notified) expect(JSON.stringify(integrationEventV1(e)?.data)).toBe(JSON.stringify(e.data));
  });

  it('leave out whatever else a stored event carries, keep the optional catch-up fields only when present', () => {
    const reset = life().find((e) => e.type === 'PeriodReset')! as Extract<SpaceEvent, { type: 'PeriodReset' }>;
    const extra = { ...reset.data, internalNote: 'not for other services' };
    expect(integrationEventV1({ type: 'PeriodReset', data: extra })?.data).not.toHaveProperty('internalNote');
    const { boundariesCovered: _b, firstBoundary: _f, ...old } = reset.data;
    expect(Object.keys(integrationEventV1({ type: 'PeriodReset', data: old })!.data)).toEqual(['spaceId', 'periodStart', 'periodEnd', 'previousPeriodStart', 'plan', 'cycle', 'limits']);
    expect(integrationEventV1({ type: 'GenerationRecorded', data: {} })).toBeNull();
  });

  it('wrap it in the v1 envelope: id, type, spaceId, position as a decimal string, recordedAt, data', () => {
    const t = life().find((e) => e.type === 'ThresholdCrossed')!;
    expect(integrationEnvelopeV1({ id: t.id, type: t.type, data: t.data, recordedAt: '2025-01-02T00:00:00.000Z', globalPosition: 2n ** 63n - 1n }, SPACE_ID)).toEqual({
      id: t.id,
      type: 'ThresholdCrossed',
      spaceId: SPACE_ID,
      position: '9223372036854775807',
      recordedAt: '2025-01-02T00:00:00.000Z',
      data: t.data,
    });
  });
});
