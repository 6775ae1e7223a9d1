/**
 * Dead letters for ops: list and show them from the store, and re-drive one (its original bytes,
 * with its original key and headers, to its original topic), recording `DeadLetterRedriven` in
 * the same dead-letter stream so a letter is re-driven once.
 *
 * Order: produce first, then record. A crash between the two can produce the letter twice; the
 * service dedupes inbound events on their eventId, so the effect is still once. Recording first
 * would risk a letter marked re-driven that never reached the topic.
 */
import { fromJsonData, toJsonData } from '@metering/domain';
import { type EventStore, WrongExpectedRevisionError } from '@metering/event-store';
import type { MessageProducer } from '@metering/messaging';
import {
  DEAD_LETTER_RECORDED,
  DEAD_LETTER_REDRIVEN,
  DEAD_LETTER_STREAM_PREFIX,
  type DeadLetterData,
  deadLetterStream,
} from '../kafka/dead-letters';
import { uuidV5 } from '../infra/clock';

export interface DeadLetterEntry {
  letter: DeadLetterData;
  stream: string;
  /** Global position of the DeadLetterRecorded event. */
  position: string;
  redriven: { at: string; reason: string | null } | null;
}

export interface DeadLetterRedrivenData {
  deadLetterId: string;
  topic: string;
  partition: number;
  offset: string;
  reason: string | null;
  redrivenAt: string;
}

export async function listDeadLetters(store: EventStore, pageSize = 5000): Promise<DeadLetterEntry[]> {
  const byId = new Map<string, DeadLetterEntry>();
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: pageSize, streamPrefix: DEAD_LETTER_STREAM_PREFIX });
    if (page.length === 0) break;
    for (const e of page) {
      if (e.type === DEAD_LETTER_RECORDED) {
        const letter = fromJsonData<DeadLetterData>(e.data);
        byId.set(letter.deadLetterId, { letter, stream: e.streamName, position: e.globalPosition.toString(), redriven: null });
      } else if (e.type === DEAD_LETTER_REDRIVEN) {
        const d = fromJsonData<DeadLetterRedrivenData>(e.data);
        const entry = byId.get(d.deadLetterId);
        if (entry) entry.redriven = { at: d.redrivenAt ?? e.recordedAt, reason: d.reason ?? null };
      }
    }
    after = page[page.length - 1].globalPosition;
  }
  return [...byId.values()];
}

export async function findDeadLetter(store: EventStore, id: string): Promise<DeadLetterEntry | null> {
  return (await listDeadLetters(store)).find((e) => e.letter.deadLetterId === id) ?? null;
}

export type RedriveOutcome = { deadLetterId: string; outcome: 'redriven' | 'already_redriven' };

/** Re-drives one letter (see the file comment for the order of the two writes). */
export async function redrive(store: EventStore, producer: MessageProducer, entry: DeadLetterEntry, reason: string | null, now: () => number): Promise<RedriveOutcome> {
  const l = entry.letter;
  const stream = deadLetterStream(l.topic, l.partition);
  const alreadyDone = async (): Promise<{ done: boolean; revision: number }> => {
    const events = await store.readStream(stream);
    const done = events.some((e) => e.type === DEAD_LETTER_REDRIVEN && (e.data as { deadLetterId?: string }).deadLetterId === l.deadLetterId);
    return { done, revision: events.length ? events[events.length - 1].revision : -1 };
  };
  if (l.truncated) {
    throw new Error(`dead letter ${l.deadLetterId} was recorded truncated (${l.truncated.valueBytes} bytes over the store's append budget): re-publish the original message from its source`);
  }
  let state = await alreadyDone();
  if (state.done) return { deadLetterId: l.deadLetterId, outcome: 'already_redriven' };
  await producer.send(l.topic, [{ key: l.key ?? '', value: Buffer.from(l.value, 'base64'), headers: l.headers ?? {} }]);
  const data: DeadLetterRedrivenData = { deadLetterId: l.deadLetterId, topic: l.topic, partition: l.partition, offset: l.offset, reason, redrivenAt: new Date(now()).toISOString() };
  for (let attempt = 1; ; attempt++) {
    try {
      await store.append(stream, [{ id: uuidV5(`deadletter-redriven/${l.deadLetterId}`), type: DEAD_LETTER_REDRIVEN, data: toJsonData(data) }], state.revision < 0 ? 'no_stream' : state.revision);
      return { deadLetterId: l.deadLetterId, outcome: 'redriven' };
    } catch (err) {
      if (!(err instanceof WrongExpectedRevisionError) || attempt >= 10) throw err;
      state = await alreadyDone();
      if (state.done) return { deadLetterId: l.deadLetterId, outcome: 'already_redriven' };
    }
  }
}
