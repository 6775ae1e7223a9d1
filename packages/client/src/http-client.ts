import { MeteringConflictError, MeteringError, MeteringRejectedError, MeteringUnauthorizedError, MeteringUnavailableError, isConflict } from './errors';
import { batchExportPayload, generationPayload, subscriptionPayload } from './payloads';
import type {
  BatchExportInput,
  EntitlementAnswer,
  EntitlementQuestion,
  ErrorBody,
  EventsPage,
  GenerationInput,
  NotificationsPage,
  PostEventsAnswer,
  RecordResult,
  SubscriptionAnswer,
  SubscriptionInput,
  UsageView,
} from './types';

export interface MeteringClientOptions {
  /** The service's base URL, e.g. http://metering:3000 */
  baseUrl: string;
  /** An API key (sent as `Authorization: Bearer <key>`); needs `ingest` to record, `read` to read. */
  apiKey?: string;
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number;
  /** Further attempts after a network error, a timeout, 429 or 5xx (default 3). Safe: every event has a stable eventId. */
  retries?: number;
  /** First backoff (default 100 ms), doubled each attempt, with jitter. */
  retryDelayMs?: number;
  /** Another fetch (tests, proxies). */
  fetch?: typeof globalThis.fetch;
}

type Method = 'GET' | 'POST' | 'PUT';
const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const SPACE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/**
 * The metering service over HTTP. Every method resolves with the service's typed answer or
 * rejects with a MeteringRejectedError (field and rule), MeteringConflictError,
 * MeteringUnauthorizedError or MeteringUnavailableError.
 */
export class MeteringClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly fetchFn: typeof globalThis.fetch;

  constructor(private readonly options: MeteringClientOptions) {
    if (!options?.baseUrl) throw new TypeError('MeteringClient: baseUrl is required');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retries = Math.max(0, options.retries ?? 3);
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  /** Records one AI generation (a "generate more" of 2 images is `generations: 2`). */
  async recordGeneration(input: GenerationInput): Promise<RecordResult> {
    return this.recordOne({ type: 'generation-performed', ...generationPayload(input) });
  }

  /** Records one batch export (it counts the batch's images). */
  async recordBatchExport(input: BatchExportInput): Promise<RecordResult> {
    return this.recordOne({ type: 'batch-exported', ...batchExportPayload(input) });
  }

  /**
   * Records up to 1000 events in one request and answers each one's outcome (rejected ones are in
   * the answer, not thrown). Give each its type: {type: 'generation-performed', ...GenerationInput}.
   */
  async recordEvents(
    events: (({ type: 'generation-performed' } & GenerationInput) | ({ type: 'batch-exported' } & BatchExportInput))[],
  ): Promise<PostEventsAnswer> {
    const body = events.map((e) => {
      const { type, ...rest } = e;
      return type === 'generation-performed'
        ? { type, ...generationPayload(rest as GenerationInput) }
        : { type, ...batchExportPayload(rest as BatchExportInput) };
    });
    return this.request<PostEventsAnswer>('POST', '/v1/events', body);
  }

  /** Changes a Space's plan and cycle; resolves with the outcome and the usage view after it. */
  async changeSubscription(spaceId: string, input: SubscriptionInput): Promise<SubscriptionAnswer> {
    const { spaceId: _s, ...payload } = subscriptionPayload(this.space(spaceId), input);
    return this.request<SubscriptionAnswer>('PUT', `/v1/spaces/${encodeURIComponent(spaceId)}/subscription`, payload);
  }

  /** The Space's usage screen: plan, period, next reset and every pool's used / limit / percent. */
  async usage(spaceId: string): Promise<UsageView> {
    return this.request<UsageView>('GET', `/v1/spaces/${encodeURIComponent(this.space(spaceId))}/usage`);
  }

  /** May this Space spend `generations` on `feature` (or export a batch of `batchImages`)? */
  async check(spaceId: string, question: EntitlementQuestion): Promise<EntitlementAnswer> {
    return this.request<EntitlementAnswer>('POST', `/v1/spaces/${encodeURIComponent(this.space(spaceId))}/entitlements/check`, question);
  }

  /** One page of the Space's stream, for audits; `nextRevision` is the next page's `fromRevision`. */
  async events(spaceId: string, page: { fromRevision?: number; limit?: number } = {}): Promise<EventsPage> {
    const q = new URLSearchParams();
    if (page.fromRevision !== undefined) q.set('fromRevision', String(page.fromRevision));
    if (page.limit !== undefined) q.set('limit', String(page.limit));
    const qs = q.toString();
    return this.request<EventsPage>('GET', `/v1/spaces/${encodeURIComponent(this.space(spaceId))}/events${qs ? `?${qs}` : ''}`);
  }

  /** Threshold and reset events in store order (the HTTP twin of the Kafka topics). */
  async notifications(page: { since?: string; limit?: number } = {}): Promise<NotificationsPage> {
    const q = new URLSearchParams();
    if (page.since !== undefined) q.set('since', page.since);
    if (page.limit !== undefined) q.set('limit', String(page.limit));
    const qs = q.toString();
    return this.request<NotificationsPage>('GET', `/v1/notifications${qs ? `?${qs}` : ''}`);
  }

  private space(spaceId: string): string {
    if (typeof spaceId !== 'string' || !SPACE.test(spaceId))
      throw new MeteringRejectedError([{ field: 'spaceId', rule: 'matches', message: 'spaceId: 1-128 letters, digits and . _ : @ - only' }]);
    return spaceId;
  }

  private async recordOne(event: { type: string; eventId: string; spaceId: string }): Promise<RecordResult> {
    this.space(event.spaceId);
    const answer = await this.request<PostEventsAnswer>('POST', '/v1/events', event);
    const r = answer.results[0];
    if (!r) throw new MeteringError('the service answered without an outcome', undefined, answer);
    if (r.outcome === 'rejected' || r.outcome === 'conflict') {
      if (r.outcome === 'conflict' || isConflict(r.errors)) throw new MeteringConflictError(`eventId ${event.eventId} was recorded before with another payload`, event.eventId, undefined, answer);
      throw new MeteringRejectedError(r.errors ?? [], undefined, answer, event.eventId);
    }
    return { outcome: r.outcome, eventId: r.eventId ?? event.eventId, spaceId: r.spaceId ?? event.spaceId, ...(r.position ? { position: r.position } : {}) };
  }

  private async request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let last: { status?: number; body?: unknown; cause?: unknown; message: string } = { message: 'no attempt' };
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(backoff(this.retryDelayMs, attempt));
      let res: Response;
      try {
        res = await this.fetchFn(`${this.baseUrl}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (err) {
        const timeout = (err as Error)?.name === 'TimeoutError';
        last = { cause: err, message: timeout ? `no answer within ${this.timeoutMs} ms` : `cannot reach ${this.baseUrl}: ${describe(err)}` };
        continue;
      }
      const text = await res.text().catch(() => '');
      let parsed: unknown = undefined;
      if (text) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      if (res.ok) return parsed as T;
      if (RETRY_STATUS.has(res.status)) {
        last = { status: res.status, body: parsed, message: `${method} ${path} answered ${res.status}` };
        continue;
      }
      throw errorOf(res.status, parsed, method, path);
    }
    throw new MeteringUnavailableError(`metering unavailable after ${this.retries + 1} attempt(s): ${last.message}`, this.retries + 1, last.status, last.body, { cause: last.cause });
  }
}

function errorOf(status: number, body: unknown, method: string, path: string): MeteringError {
  const b = (body && typeof body === 'object' ? body : {}) as Partial<ErrorBody>;
  if (status === 401 || status === 403)
    return new MeteringUnauthorizedError(b.message ?? (status === 401 ? 'an API key is required' : 'the API key lacks the scope'), status, b.requiredScope, body);
  if (status === 409 || isConflict(b.errors)) return new MeteringConflictError(b.errors?.[0]?.message ?? `${method} ${path}: conflict`, undefined, status, body);
  if (status === 400 || status === 413 || status === 422)
    return new MeteringRejectedError(b.errors?.length ? b.errors : [{ field: '', rule: b.error ?? String(status), message: b.message ?? `${method} ${path} answered ${status}` }], status, body);
  return new MeteringError(`${method} ${path} answered ${status}${b.error ? ` (${b.error})` : ''}`, status, body);
}

function backoff(base: number, attempt: number): number {
  const d = base * 2 ** (attempt - 1);
  return Math.min(5000, d / 2 + Math.random() * d);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return [e?.message, e?.cause?.code ?? e?.cause?.message].filter(Boolean).join(': ') || String(err);
}
