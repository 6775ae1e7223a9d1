import { StoredEvent, StoredEventJson } from '../port';

/**
 * A parsed stored event as `readAllJson` returns it (data and metadata serialised back to JSON
 * text, empty metadata as null), for adapters whose client hands events out parsed (KurrentDB).
 */
export function toStoredJson(e: StoredEvent): StoredEventJson {
  return {
    id: e.id,
    streamName: e.streamName,
    type: e.type,
    dataJson: JSON.stringify(e.data),
    metadataJson: Object.keys(e.metadata).length === 0 ? null : JSON.stringify(e.metadata),
    revision: e.revision,
    globalPosition: e.globalPosition,
  };
}
