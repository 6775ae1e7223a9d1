/**
 * Adapter-independent parts of an append: input validation and the idempotency / expected
 * revision decision. Every adapter runs the same rules, so they behave the same under the
 * contract suite.
 */
import {
  AppendRequest,
  AppendResult,
  DuplicateEventIdError,
  ExpectedRevision,
  NewEvent,
  WrongExpectedRevisionError,
} from '../port';
import { checkBudget } from './append-budget';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An event ready to be written: id normalised (lower-case UUID), JSON already serialised. */
export interface PreparedEvent {
  id: string;
  type: string;
  data: string;
  metadata: string;
}

export interface PreparedRequest {
  streamName: string;
  expected: ExpectedRevision;
  events: PreparedEvent[];
}

function serialise(value: unknown, what: string): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${what} must be a JSON object`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`${what} is not serialisable to JSON: ${(err as Error).message}`);
  }
  if (json === undefined) throw new TypeError(`${what} is not serialisable to JSON`);
  return json;
}

export function validateStreamName(streamName: unknown): asserts streamName is string {
  if (typeof streamName !== 'string' || streamName.length === 0) {
    throw new TypeError('streamName must be a non-empty string');
  }
}

export function validateExpected(expected: unknown): asserts expected is ExpectedRevision {
  if (expected === 'no_stream' || expected === 'any') return;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return;
  throw new TypeError(`expected revision must be 'no_stream', 'any' or an integer >= 0, got ${String(expected)}`);
}

/**
 * Validates one append and serialises its payloads. Throws before anything is written, also
 * AppendTooLargeError when `budget` (bytes, null: none) is exceeded.
 */
export function prepareRequest(streamName: string, events: NewEvent[], expected: ExpectedRevision, budget: number | null = null): PreparedRequest {
  validateStreamName(streamName);
  validateExpected(expected);
  if (!Array.isArray(events)) throw new TypeError('events must be an array');
  const seen = new Set<string>();
  const prepared = events.map((e, i) => {
    if (e === null || typeof e !== 'object') throw new TypeError(`events[${i}] must be an object`);
    if (typeof e.id !== 'string') throw new TypeError(`events[${i}].id must be a UUID string`);
    const id = e.id.toLowerCase();
    if (!UUID_RE.test(id)) throw new TypeError(`events[${i}].id "${e.id}" is not a UUID`);
    if (seen.has(id)) throw new DuplicateEventIdError(streamName, id);
    seen.add(id);
    if (typeof e.type !== 'string' || e.type.length === 0) throw new TypeError(`events[${i}].type must be a non-empty string`);
    return {
      id,
      type: e.type,
      data: serialise(e.data, `events[${i}].data`),
      metadata: serialise(e.metadata ?? {}, `events[${i}].metadata`),
    };
  });
  checkBudget(streamName, prepared, budget);
  return { streamName, expected, events: prepared };
}

/** Each request of the batch is held to the budget on its own (one stream's part = one append). */
export function prepareBatch(batch: AppendRequest[], budget: number | null = null): PreparedRequest[] {
  if (!Array.isArray(batch)) throw new TypeError('batch must be an array');
  const all = batch.map((r) => {
    if (r === null || typeof r !== 'object') throw new TypeError('each batch entry must be an object');
    return prepareRequest(r.streamName, r.events, r.expected, budget);
  });
  return all;
}

/** Where an already-stored event id lives. */
export interface ExistingEvent {
  id: string;
  streamName: string;
  revision: number;
  globalPosition: bigint;
}

/** State of a stream as the planner sees it (database state plus earlier requests of the batch). */
export interface StreamTip {
  revision: number; // -1 when the stream does not exist
  lastGlobalPosition: bigint; // 0n when the stream does not exist
}

export type PlanDecision =
  | { kind: 'write'; firstRevision: number; result: Omit<AppendResult, 'lastGlobalPosition'> }
  | { kind: 'already'; lastEventId: string; result: AppendResult }
  | { kind: 'empty'; result: AppendResult };

/**
 * Decides what one request does, in this order:
 *  1. idempotent retry: every id already stored in this stream as the contiguous run that ends
 *     the stream, in the same order -> nothing to write, alreadyAppended;
 *  2. expected revision check -> WrongExpectedRevisionError carrying the actual revision (a writer
 *     whose view is stale must reload and decide again, even when some of its ids were stored
 *     meanwhile by another writer that decided the same thing);
 *  3. any other stored id -> DuplicateEventIdError;
 *  4. otherwise write from revision tip + 1.
 * `existing` holds the stored events among the request's ids (any stream), including those written
 * by earlier requests of the same batch; `tip` likewise includes them.
 */
export function decide(
  req: PreparedRequest,
  tip: StreamTip,
  existing: ReadonlyMap<string, ExistingEvent>,
): PlanDecision {
  const { streamName, events, expected } = req;
  if (events.length > 0) {
    const found = events.map((e) => existing.get(e.id));
    if (found.some((f) => f !== undefined)) {
      const first = found[0];
      const isTailRun =
        first !== undefined &&
        found.every(
          (f, i) => f !== undefined && f.streamName === streamName && f.revision === first.revision + i,
        ) &&
        first.revision + events.length - 1 === tip.revision;
      if (isTailRun) {
        const last = found[found.length - 1] as ExistingEvent;
        return {
          kind: 'already',
          lastEventId: events[events.length - 1].id,
          result: { nextExpectedRevision: tip.revision, lastGlobalPosition: last.globalPosition, alreadyAppended: true },
        };
      }
      checkExpected(streamName, expected, tip.revision);
      const dup = events.find((e) => existing.has(e.id)) as PreparedEvent;
      throw new DuplicateEventIdError(streamName, dup.id);
    }
  }
  checkExpected(streamName, expected, tip.revision);
  if (events.length === 0) {
    return {
      kind: 'empty',
      result: { nextExpectedRevision: tip.revision, lastGlobalPosition: tip.lastGlobalPosition, alreadyAppended: false },
    };
  }
  return {
    kind: 'write',
    firstRevision: tip.revision + 1,
    result: { nextExpectedRevision: tip.revision + events.length, alreadyAppended: false },
  };
}

export function checkExpected(streamName: string, expected: ExpectedRevision, actual: number): void {
  if (expected === 'any') return;
  if (expected === 'no_stream' ? actual !== -1 : expected !== actual) {
    throw new WrongExpectedRevisionError(streamName, expected, actual);
  }
}
