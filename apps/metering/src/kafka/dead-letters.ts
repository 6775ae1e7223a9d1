/**
 * Dead letters are recorded in the event store first (stream `deadletters-<topic>-<partition>`,
 * id derived from topic/partition/offset, so a redelivered poison message is recorded once) and
 * reach the dead-letter topic through the outbound relay, like every other outbound event: no
 * dual write, and ops can list, show and re-drive them from the store.
 */
import type { Rejection } from '@metering/domain';
import { type EventStore, WrongExpectedRevisionError } from '@metering/event-store';
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
}

export function reasonOf(errors: Rejection[]): string {
  const e = errors[0];
  if (!e) return 'rejected';
  return `${e.field || '(message)'}: ${e.rule}: ${e.message}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}`;
}

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
        const r = await this.store.append(
          stream,
          fresh.map((l) => ({ id: l.deadLetterId, type: DEAD_LETTER_RECORDED, data: l as unknown as Record<string, unknown> })),
          k.revision < 0 ? 'no_stream' : k.revision,
        );
        k.revision = r.nextExpectedRevision;
        for (const l of fresh) k.ids.add(l.deadLetterId);
        return;
      } catch (err) {
        if (!(err instanceof WrongExpectedRevisionError) || attempt >= 10) throw err;
      }
    }
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
