/**
 * The typed event codec at the store boundary: domain events <-> the stored JSON of a Space's
 * stream. The store port carries `{ type, data: Record<string, unknown> }`; this module is the one
 * place that turns that into a typed `SpaceEvent` and back, with a version per event type and an
 * upcaster hook (`UPCASTERS`) for when a type's stored layout changes.
 *
 * Versions: an event is stored at its type's `SPACE_EVENT_SCHEMA` version. Version 1 is written
 * with no marker (every event stored so far is version 1); a later version is written with
 * `metadata.schema` and a reader upcasts older data step by step before the domain sees it.
 * Additive, optional fields (e.g. `SubscriptionChanged.moves` and `.memberMoves`, `PeriodReset.boundariesCovered`,
 * `SubscriptionChanged.keepsUsage` and `.clearsPeriod`) need no new version: readers treat their absence explicitly.
 */
import { type IdentifiedSpaceEvent, SPACE_EVENT_TYPES, SPACE_STREAM_PREFIX, type SpaceEvent, type SpaceEventType } from './events';

/** The shape the store hands out and takes (structurally the port's event; the domain imports no store). */
export interface StoredShape {
  type: string;
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** The stored layout version of each Space event type. */
export const SPACE_EVENT_SCHEMA: Readonly<Record<SpaceEventType, number>> = {
  SubscriptionChanged: 1,
  GenerationRecorded: 1,
  BatchExportRecorded: 1,
  PeriodReset: 1,
  ThresholdCrossed: 1,
  ThresholdRearmed: 1,
  SubscriptionActivated: 1,
};

/** Turns a type's stored data at version `from` into version `from + 1`. */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;

/** Per type, the upcaster from each old version. Empty while every type is at version 1. */
export const UPCASTERS: Partial<Record<SpaceEventType, Record<number, Upcaster>>> = {};

const KNOWN = new Set<string>(SPACE_EVENT_TYPES);

export const isSpaceEventType = (type: string): type is SpaceEventType => KNOWN.has(type);

/** The Space a stored event of a Space stream belongs to: its data's spaceId, else the stream's name. */
export function spaceIdOfStored(stored: { streamName: string; data: Record<string, unknown> }): string {
  return spaceIdOf(stored.streamName, stored.data);
}

/** `spaceIdOfStored` of a stream name and the event's data, given apart. */
export function spaceIdOf(streamName: string, data: Record<string, unknown>): string {
  const id = data.spaceId;
  return typeof id === 'string' ? id : streamName.slice(SPACE_STREAM_PREFIX.length);
}

const SPACE_ID_KEY = '"spaceId"';

/**
 * `spaceIdOf(streamName, JSON.parse(dataJson))` read from the text alone when the text settles it,
 * else null (parse it then). For a reader of the feed that skips most events (the entitlement view
 * keeps some Spaces): it need not parse an event to know it is not one of them. Exact, not a guess:
 *  - a backslash anywhere (an escape could spell the key): null;
 *  - no `"spaceId"` in the text: the data has no spaceId key at any depth, so the stream's name;
 *  - the text opens with `{"spaceId":"` and holds `"spaceId"` once (no second key to win): the
 *    string up to the next quote, which ends it (no escapes);
 *  - anything else (the key elsewhere, twice, or not a string): null.
 * `dataJson` must be the JSON text of the data (what the store's `readAllJson` returns).
 */
export function spaceIdOfStoredJson(streamName: string, dataJson: string): string | null {
  if (dataJson.indexOf('\\') !== -1) return null;
  const at = dataJson.indexOf(SPACE_ID_KEY);
  if (at === -1) return streamName.slice(SPACE_STREAM_PREFIX.length);
  if (at !== 1 || dataJson.charCodeAt(0) !== 123 /* { */ || !dataJson.startsWith(':"', at + SPACE_ID_KEY.length)) return null;
  if (dataJson.indexOf(SPACE_ID_KEY, at + SPACE_ID_KEY.length) !== -1) return null;
  const from = at + SPACE_ID_KEY.length + 2;
  const end = dataJson.indexOf('"', from);
  return end === -1 ? null : dataJson.slice(from, end);
}

/**
 * The stored shape of an event read with its data and metadata still as JSON text (the store's
 * `readAllJson`): each parsed once, here; null metadata is none. `decodeSpaceEvent` of the result
 * is then the event itself, with no copy.
 */
export function parseStoredJson(type: string, dataJson: string, metadataJson: string | null): StoredShape {
  const data = JSON.parse(dataJson) as Record<string, unknown>;
  return metadataJson === null ? { type, data } : { type, data, metadata: JSON.parse(metadataJson) as Record<string, unknown> };
}

/** Plain JSON data of a typed payload (the port's data type). */
export function toJsonData<T extends object>(data: T): Record<string, unknown> {
  return data as T & Record<string, unknown>;
}

/**
 * Typed data of a stored non-Space record this service wrote itself (dead letters, catalog
 * versions): the store returns what `toJsonData` gave it.
 */
export function fromJsonData<T extends object>(data: Record<string, unknown>): T {
  return data as unknown as T;
}

/** The stored form of a decided event (what the store port appends). */
export function encodeSpaceEvent(event: IdentifiedSpaceEvent): { id: string; type: SpaceEventType; data: Record<string, unknown>; metadata?: Record<string, unknown> } {
  const schema = SPACE_EVENT_SCHEMA[event.type];
  return { id: event.id, type: event.type, data: toJsonData(event.data), ...(schema > 1 ? { metadata: { schema } } : {}) };
}

/** The versions and upcasters a decoder uses (the module's own by default; tests pass others). */
export interface CodecVersions {
  schema: Readonly<Record<SpaceEventType, number>>;
  upcasters: Partial<Record<SpaceEventType, Record<number, Upcaster>>>;
}

const CURRENT: CodecVersions = { schema: SPACE_EVENT_SCHEMA, upcasters: UPCASTERS };

function upcast(type: SpaceEventType, data: Record<string, unknown>, from: number, versions: CodecVersions): Record<string, unknown> {
  let out = data;
  for (let v = from; v < versions.schema[type]; v++) {
    const step = versions.upcasters[type]?.[v];
    if (!step) throw new Error(`no upcaster for ${type} from schema ${v}`);
    out = step(out);
  }
  return out;
}

/** A stored Space event as a typed domain event (upcast to the current layout); null for another kind of event. */
export function decodeSpaceEvent(stored: StoredShape, versions: CodecVersions = CURRENT): SpaceEvent | null {
  if (!isSpaceEventType(stored.type)) return null;
  const raw = stored.metadata?.schema;
  const from = typeof raw === 'number' && Number.isInteger(raw) && raw >= 1 ? raw : 1;
  if (from > versions.schema[stored.type]) throw new Error(`${stored.type} stored at schema ${from}, newer than this reader's ${versions.schema[stored.type]}`);
  // The one trusted cast: the store holds what encodeSpaceEvent wrote. At the current layout the
  // stored record itself is the event (no copy: folds decode every event); older ones are upcast.
  if (from === versions.schema[stored.type]) return stored as unknown as SpaceEvent;
  return { type: stored.type, data: upcast(stored.type, stored.data, from, versions) } as unknown as SpaceEvent;
}

/** The data type of a Space event type. */
export type SpaceEventData<K extends SpaceEventType> = Extract<SpaceEvent, { type: K }>['data'];

/** Typed data of a stored event that must be of `type` (throws otherwise). */
export function dataAs<K extends SpaceEventType>(type: K, stored: StoredShape): SpaceEventData<K> {
  if (stored.type !== type) throw new Error(`expected a ${type} event, got ${stored.type}`);
  return decodeSpaceEvent(stored)!.data as unknown as SpaceEventData<K>;
}

/** Decodes a page of stored events, skipping those that are not Space events. */
export function decodeSpaceEvents(stored: readonly StoredShape[]): SpaceEvent[] {
  const out: SpaceEvent[] = [];
  for (const s of stored) {
    const e = decodeSpaceEvent(s);
    if (e) out.push(e);
  }
  return out;
}
