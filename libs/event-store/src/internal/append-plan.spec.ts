import { DuplicateEventIdError, WrongExpectedRevisionError } from '../port';
import { ExistingEvent, decide, prepareRequest } from './append-plan';

const ID = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const ev = (n: number) => ({ id: ID(n), type: 'T', data: { n } });
const stored = (n: number, streamName: string, revision: number): [string, ExistingEvent] => [
  ID(n),
  { id: ID(n), streamName, revision, globalPosition: BigInt(100 + revision) },
];

describe('prepareRequest', () => {
  test('normalises ids to lower case and serialises payloads', () => {
    const r = prepareRequest('s', [{ id: ID(1).toUpperCase(), type: 'T', data: { a: 'ü' } }], 'any');
    expect(r.events[0]).toEqual({ id: ID(1), type: 'T', data: '{"a":"ü"}', metadata: '{}' });
  });

  test.each([
    ['non-object data', [{ id: ID(1), type: 'T', data: [] as unknown as Record<string, unknown> }]],
    ['cyclic data', [{ id: ID(1), type: 'T', data: (() => { const o: Record<string, unknown> = {}; o.o = o; return o; })() }]],
    ['not a uuid', [{ id: 'x', type: 'T', data: {} }]],
  ])('rejects %s with a TypeError', (_, events) => {
    expect(() => prepareRequest('s', events, 'any')).toThrow(TypeError);
  });
});

describe('decide', () => {
  const tip = (revision: number) => ({ revision, lastGlobalPosition: BigInt(100 + revision) });

  test('the tail run is an idempotent retry, checked before the expected revision', () => {
    const req = prepareRequest('s', [ev(2), ev(3)], 'no_stream');
    const d = decide(req, tip(3), new Map([stored(2, 's', 2), stored(3, 's', 3)]));
    expect(d).toMatchObject({ kind: 'already', result: { nextExpectedRevision: 3, lastGlobalPosition: 103n, alreadyAppended: true } });
  });

  test.each([
    ['not at the end', [stored(2, 's', 1), stored(3, 's', 2)], 3],
    ['another stream', [stored(2, 'other', 2), stored(3, 'other', 3)], 3],
    ['only part stored', [stored(3, 's', 3)], 3],
    ['not contiguous', [stored(2, 's', 1), stored(3, 's', 3)], 3],
  ] as const)('a stored id that is not a retry (%s) is a DuplicateEventIdError', (_, existing, at) => {
    const req = prepareRequest('s', [ev(2), ev(3)], 'any');
    expect(() => decide(req, tip(at), new Map(existing))).toThrow(DuplicateEventIdError);
  });

  test('a stale writer whose ids were partly stored by another writer gets a conflict (reload and decide again), not a duplicate', () => {
    // Another writer decided the same event (same deterministic id) and appended it first.
    const req = prepareRequest('s', [ev(2), ev(3)], 2);
    expect(() => decide(req, tip(3), new Map([stored(2, 's', 3)]))).toThrow(WrongExpectedRevisionError);
    // With the expected revision right, the same overlap is a duplicate.
    expect(() => decide(prepareRequest('s', [ev(2), ev(3)], 3), tip(3), new Map([stored(2, 's', 3)]))).toThrow(DuplicateEventIdError);
  });

  test('expected revision rules', () => {
    const req = (e: 'no_stream' | 'any' | number) => prepareRequest('s', [ev(9)], e);
    expect(decide(req('no_stream'), tip(-1), new Map())).toMatchObject({ kind: 'write', firstRevision: 0 });
    expect(decide(req('any'), tip(4), new Map())).toMatchObject({ kind: 'write', firstRevision: 5 });
    expect(decide(req(4), tip(4), new Map())).toMatchObject({ kind: 'write', firstRevision: 5, result: { nextExpectedRevision: 5 } });
    expect(() => decide(req('no_stream'), tip(0), new Map())).toThrow(WrongExpectedRevisionError);
    expect(() => decide(req(3), tip(4), new Map())).toThrow(expect.objectContaining({ actual: 4, expected: 3 }));
    expect(() => decide(req(0), tip(-1), new Map())).toThrow(expect.objectContaining({ actual: -1 }));
  });
});
