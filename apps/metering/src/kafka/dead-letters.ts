/**
 * Dead letters are recorded in the event store first (stream `deadletters-<topic>-<partition>`,
 * id derived from topic/partition/offset, so a redelivered poison message is recorded once) and
 * reach the dead-letter topic through the outbound relay, like every other outbound event: no
 * dual write, and ops can list, show and re-drive them from the store.
 */
import { type Rejection, fromJsonData, toJsonData } from '@metering/domain';
import { createHash } from 'node:crypto';
import { type EventStore, type NewEvent, WrongExpectedRevisionError, chunkByBytes, newEventBytes } from '@metering/event-store';
import type { ConsumedMessage } from '@metering/messaging';
import type { IdGenerator } from '../infra/clock';

export const DEAD_LETTER_RECORDED = 'DeadLetterRecorded';
export const DEAD_LETTER_REDRIVEN = 'DeadLetterRedriven';
export const DEAD_LETTER_STREAM_PREFIX = 'deadletters-';

export interface DeadLetterData {
  deadLetterId: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** The original bytes, base64. */
  value: string;
  headers: Record<string, string>;
  timestamp: string;
  errors: Rejection[];
  /** One line: the first error's field, rule and message. */
  reason: string;
  recordedAt: string;
  /**
   * Set when the letter alone exceeded the store's append budget (e.g. a 1 MiB Kafka message on
   * KurrentDB, whose MaxAppendSize is 1 MiB and base64 adds a third): `value` (and the headers)
   * were cut so the partition moves on; the original size and digest are kept. Such a letter
   * cannot be re-driven from the store.
   */
  truncated?: { valueBytes: number; sha256: string; headersDropped: boolean };
}

export function reasonOf(errors: Rejection[]): string {
  const e = errors[0];
  if (!e) return 'rejected';
  return `${e.field || '(message)'}: ${e.rule}: ${e.message}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}`;
}

const toEvent = (l: DeadLetterData): NewEvent => ({ id: l.deadLetterId, type: DEAD_LETTER_RECORDED, data: toJsonData(l) });

export const deadLetterStream = (topic: string, partition: number): string => `${DEAD_LETTER_STREAM_PREFIX}${topic}-${partition}`;

export class DeadLetterRecorder {
  private readonly known = new Map<string, { revision: number; ids: Set<string> }>();

  constructor(private readonly store: EventStore, private readonly ids: IdGenerator, private readonly now: () => number) {}

  letter(topic: string, partition: number, msg: ConsumedMessage, errors: Rejection[]): DeadLetterData {
    return {
      deadLetterId: this.ids.deterministic(`deadletter/${topic}/${partition}/${msg.offset}`),
      topic,
      partition,
      offset: msg.offset,
      key: msg.key,
      value: msg.value.toString('base64'),
      headers: msg.headers,
      timestamp: msg.timestamp,
      errors,
      reason: reasonOf(errors),
      recordedAt: new Date(this.now()).toISOString(),
    };
  }

  /** Records the letters (all of one partition's stream or several), skipping those already recorded. */
  async record(letters: DeadLetterData[]): Promise<void> {
    const byStream = new Map<string, DeadLetterData[]>();
    for (const l of letters) {
      const s = deadLetterStream(l.topic, l.partition);
      byStream.set(s, [...(byStream.get(s) ?? []), l]);
    }
    for (const [stream, list] of byStream) await this.recordInStream(stream, list);
  }

  private async recordInStream(stream: string, letters: DeadLetterData[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const k = await this.refresh(stream);
      const fresh = letters.filter((l) => !k.ids.has(l.deadLetterId));
      if (fresh.length === 0) return;
      try {
        // Chunked under the store's append budget: letters need not be atomic together (their
        // ids are deterministic, so a chunk written before a crash is skipped on the retry).
        const budget = this.store.maxAppendBytes;
        for (const chunk of chunkByBytes(stream, fresh.map((l) => this.fit(toEvent(l), budget)), budget)) {
          const r = await this.store.append(stream, chunk, k.revision < 0 ? 'no_stream' : k.revision);
          k.revision = r.nextExpectedRevision;
          for (const e of chunk) k.ids.add(e.id);
        }
        return;
      } catch (err) {
        if (!(err instanceof WrongExpectedRevisionError) || attempt >= 10) throw err;
      }
    }
  }

  /** A letter alone over the budget is cut (value, then headers) so that it can be recorded at all. */
  private fit(e: NewEvent, budget: number | null): NewEvent {
    if (budget === null || newEventBytes(e) <= budget) return e;
    const l = fromJsonData<DeadLetterData>(e.data);
    const original = Buffer.from(l.value, 'base64');
    const truncated = { valueBytes: original.length, sha256: createHash('sha256').update(original).digest('hex'), headersDropped: false };
    let cut: DeadLetterData = { ...l, value: '', truncated };
    if (newEventBytes(toEvent(cut)) > budget) cut = { ...cut, headers: {}, truncated: { ...truncated, headersDropped: true } };
    const room = budget - newEventBytes(toEvent(cut)) - 16;
    // Keep as much of the start of the message as fits (base64: 4 characters per 3 bytes).
    const keepBytes = Math.max(0, Math.floor(room / 4) * 3);
    cut = { ...cut, value: original.subarray(0, keepBytes).toString('base64') };
    return toEvent(cut);
  }

  private async refresh(stream: string): Promise<{ revision: number; ids: Set<string> }> {
    let k = this.known.get(stream);
    if (!k) {
      k = { revision: -1, ids: new Set() };
      this.known.set(stream, k);
    }
    const newer = await this.store.readStream(stream, { fromRevision: k.revision + 1 });
    for (const e of newer) {
      if (e.type === DEAD_LETTER_RECORDED) k.ids.add(e.id);
      k.revision = e.revision;
    }
    return k;
  }
}
