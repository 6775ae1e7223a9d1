import { ReadAllOptions, ReadStreamOptions } from '../port';

export interface NormalisedReadAll {
  after: bigint;
  /** null: no limit */
  maxCount: number | null;
  streamPrefix: string | null;
  types: string[] | null;
}

export function normaliseReadAll(options: ReadAllOptions = {}): NormalisedReadAll {
  const { after, maxCount, streamPrefix, types } = options;
  if (after !== undefined && (typeof after !== 'bigint' || after < 0n)) {
    throw new TypeError('readAll: after must be a bigint >= 0');
  }
  if (maxCount !== undefined && (!Number.isSafeInteger(maxCount) || maxCount < 0)) {
    throw new TypeError('readAll: maxCount must be an integer >= 0');
  }
  if (streamPrefix !== undefined && typeof streamPrefix !== 'string') {
    throw new TypeError('readAll: streamPrefix must be a string');
  }
  if (types !== undefined) {
    // An empty list would silently match nothing (a projection that never sees an event).
    if (!Array.isArray(types) || types.length === 0 || types.some((t) => typeof t !== 'string')) {
      throw new TypeError('readAll: types must be a non-empty array of strings');
    }
  }
  return {
    after: after ?? 0n,
    maxCount: maxCount ?? null,
    streamPrefix: streamPrefix ? streamPrefix : null,
    types: types ? [...types] : null,
  };
}

export function normaliseReadStream(options: ReadStreamOptions = {}): { fromRevision: number; maxCount: number | null } {
  const { fromRevision, maxCount } = options;
  if (fromRevision !== undefined && (!Number.isSafeInteger(fromRevision) || fromRevision < 0)) {
    throw new TypeError('readStream: fromRevision must be an integer >= 0');
  }
  if (maxCount !== undefined && (!Number.isSafeInteger(maxCount) || maxCount < 0)) {
    throw new TypeError('readStream: maxCount must be an integer >= 0');
  }
  return { fromRevision: fromRevision ?? 0, maxCount: maxCount ?? null };
}

/** Rejects a snapshot no adapter should store (a caller bug, never a vendor error). */
export function checkSnapshot(s: { streamName: string; revision: number; schema: number; data: string }): void {
  if (typeof s.streamName !== 'string' || s.streamName.length === 0) throw new TypeError('snapshot streamName must be a non-empty string');
  if (!Number.isSafeInteger(s.revision) || s.revision < 0) throw new TypeError('snapshot revision must be an integer >= 0');
  if (!Number.isSafeInteger(s.schema) || s.schema < 0) throw new TypeError('snapshot schema must be an integer >= 0');
  if (typeof s.data !== 'string') throw new TypeError('snapshot data must be a string');
}
