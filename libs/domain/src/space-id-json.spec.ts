/**
 * `spaceIdOfStoredJson`: the Space of a stored event read from its data's JSON text, without
 * parsing it, must be what `spaceIdOf` says of the parsed data, or null (parse it then).
 */
import fc from 'fast-check';
import { encodeSpaceEvent, spaceIdOf, spaceIdOfStoredJson } from './codec';
import { decideAll, initialSpaceState } from './space';
import { SPACE_ID, contextFor, generate, subscribe } from './testing/given-when-then';

const exact = (stream: string, text: string): void => {
  const got = spaceIdOfStoredJson(stream, text);
  if (got !== null) expect(got).toBe(spaceIdOf(stream, JSON.parse(text) as Record<string, unknown>));
};

describe('spaceIdOfStoredJson', () => {
  it('given tricky texts, when read, then it answers what the parsed data says or null', () => {
    const stream = 'space-from-stream';
    const cases: [string, string | null][] = [
      ['{"spaceId":"s-1","pool":"ai_image_credits"}', 's-1'],
      ['{"pool":"ai_image_credits"}', 'from-stream'],
      // the key later, nested, twice (the last one wins in JSON.parse), escaped, not a string
      ['{"pool":"x","spaceId":"s-2"}', null],
      ['{"moves":[{"spaceId":"s-3"}]}', null],
      ['{"spaceId":"s-4","x":{"spaceId":"s-5"}}', null],
      ['{"spaceId":"s-4","spaceId":"s-6"}', null],
      ['{"\\u0073paceId":"s-7"}', null],
      ['{"spaceId":"s-\\"8"}', null],
      ['{"spaceId":42}', null],
      ['{"spaceId":null}', null],
      ['{"note":"spaceId"}', null],
      ['{"spaceId":""}', ''],
    ];
    for (const [text, want] of cases) {
      expect([text, spaceIdOfStoredJson(stream, text)]).toEqual([text, want]);
      exact(stream, text);
    }
  });

  it('property: on any JSON object text (the key placed anywhere, any number of times), never a different answer than parsing', () => {
    const key = fc.constantFrom('spaceId', 'spaceid', 'pool', 'userId', '\\u0073paceId', 'space"Id');
    const value: fc.Arbitrary<string> = fc.oneof(
      fc.string().map((s) => JSON.stringify(s)),
      fc.constantFrom('1', 'null', 'true', '"spaceId"', '{"spaceId":"n"}', '[{"spaceId":"m"}]'),
    );
    const member = fc.tuple(key, value).map(([k, v]) => `${JSON.stringify(k).replace('\\\\u', '\\u')}:${v}`);
    const text = fc.array(member, { maxLength: 5 }).map((ms) => `{${ms.join(',')}}`);
    fc.assert(
      fc.property(fc.string(), text, (id, t) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(t);
        } catch {
          return; // not JSON: the store never holds it
        }
        const got = spaceIdOfStoredJson(`space-${id}`, t);
        if (got !== null) expect(got).toBe(spaceIdOf(`space-${id}`, parsed as Record<string, unknown>));
      }),
      { numRuns: 2000 },
    );
  });

  it('given the events the decider writes, when read as stored JSON, then each one is answered from the text (no parse)', () => {
    let state = initialSpaceState(SPACE_ID);
    const events = [];
    for (const [command, now] of [
      [subscribe('pro', 'weekly', '2025-01-01T00:00:00Z'), '2025-01-01T00:00:00Z'],
      [generate({ feature: 'ai_backgrounds', generations: 13, occurredAt: '2025-01-02T00:00:00Z' }), '2025-01-02T00:00:00Z'],
    ] as const) {
      const r = decideAll(state, [command], contextFor({ now }));
      state = r.state;
      events.push(...r.events);
    }
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const e of events) expect(spaceIdOfStoredJson('space-other', JSON.stringify(encodeSpaceEvent(e).data))).toBe(SPACE_ID);
  });
});
