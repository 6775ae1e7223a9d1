/**
 * The group commit of the PostgreSQL adapter (issue 14, see postgres-event-store.ts): concurrent
 * `append` calls of this process (the same turn of the event loop, or while the previous group is
 * being written) share one plan query and one allocation + insert statement, i.e. one commit and
 * one hold of the counter lock. Each request keeps its own checks and fails alone. Groups are
 * written one after the other (at most MAX_GROUP_REQUESTS requests / MAX_GROUP_BYTES each), so
 * positions follow call order inside a process.
 */
import { AppendResult } from '../port';
import { PreparedRequest } from '../internal/append-plan';
import { preparedEventBytes } from '../internal/append-budget';
import { MAX_APPEND_ATTEMPTS, Outcome, isRetryableWrite } from './postgres-append';
import { translatePgError } from './postgres-errors';

/** Caps of one group commit (requests, and bytes as the append budget counts them). */
const MAX_GROUP_REQUESTS = 500;
const MAX_GROUP_BYTES = 8 * 1024 * 1024;

interface PendingAppend {
  req: PreparedRequest;
  bytes: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** What the group commit writes with (the store's planner and writer on its pool). */
export interface GroupWriter {
  /** One attempt on the pool, a failed check being that request's outcome (`appendOnce`, alone). */
  appendOnce(reqs: PreparedRequest[]): Promise<Outcome[]>;
  /** All-or-nothing append with re-planning on a lost race (the store's `appendAttempts`). */
  appendAttempts(reqs: PreparedRequest[]): Promise<AppendResult[]>;
  translateWriteError(err: unknown, reqs: PreparedRequest[]): Promise<unknown>;
  notify(): void;
}

export class PgGroupCommit {
  /** Appends waiting for the next group, the group being written. */
  private pending: PendingAppend[] = [];
  private groupScheduled = false;
  private writing: Promise<void> | null = null;

  constructor(private readonly writer: GroupWriter) {}

  /** Queues a checked request for the next group; settles once the group's statement has committed. */
  enqueue(req: PreparedRequest): Promise<AppendResult> {
    let bytes = 0;
    for (const e of req.events) bytes += preparedEventBytes(e);
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ req, bytes, resolve, reject });
      this.scheduleGroup();
    });
  }

  /** Resolves once every append requested so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.writing || this.pending.length) {
      if (this.writing) await this.writing;
      else await new Promise((r) => setImmediate(r));
    }
  }

  private scheduleGroup(): void {
    if (this.groupScheduled || this.writing) return;
    this.groupScheduled = true;
    setImmediate(() => {
      this.groupScheduled = false;
      this.startGroup();
    });
  }

  /** Takes the next group (capped by count and bytes, at least one request) and writes it. */
  private startGroup(): void {
    if (this.writing || this.pending.length === 0) return;
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < MAX_GROUP_REQUESTS) {
      const b = this.pending[n].bytes;
      if (n > 0 && bytes + b > MAX_GROUP_BYTES) break;
      bytes += b;
      n++;
    }
    const group = this.pending.splice(0, n);
    this.writing = this.writeGroup(group).finally(() => {
      this.writing = null;
      if (this.pending.length) this.scheduleGroup();
    });
  }

  /**
   * Writes one group: plan once for all its streams and ids, decide each request against the
   * state left by the earlier ones (a failed check rejects that request only), then allocate
   * positions and insert every accepted event in ONE statement (its own transaction: one commit,
   * positions in request order from the counter row, as for a single append). A lost race on a
   * unique key or a serialization failure re-plans the whole group; once retries run out, each
   * request is tried alone so each gets its precise outcome. Any other failure of the statement
   * (connection lost, ...) rejects every request of the group with the translated error.
   */
  private async writeGroup(group: PendingAppend[]): Promise<void> {
    const reqs = group.map((g) => g.req);
    for (let attempt = 1; ; attempt++) {
      try {
        const outcomes = await this.writer.appendOnce(reqs);
        let wrote = false;
        outcomes.forEach((o, i) => {
          if ('error' in o) group[i].reject(translatePgError(o.error));
          else {
            if (!o.result.alreadyAppended && reqs[i].events.length > 0) wrote = true;
            group[i].resolve(o.result);
          }
        });
        if (wrote) this.writer.notify();
        return;
      } catch (err) {
        const retryable = isRetryableWrite(err);
        if (retryable && attempt < MAX_APPEND_ATTEMPTS) continue;
        if (retryable && group.length > 1) {
          for (const g of group) await this.writer.appendAttempts([g.req]).then(([r]) => g.resolve(r), g.reject);
          return;
        }
        const e = group.length === 1 ? await this.writer.translateWriteError(err, reqs) : translatePgError(err);
        for (const g of group) g.reject(e);
        return;
      }
    }
  }
}
