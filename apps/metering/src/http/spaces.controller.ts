import { Body, Controller, Get, HttpCode, HttpStatus, Inject, Param, Post, Put, Query, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiPayloadTooLargeResponse,
  ApiQuery,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { PinoLogger } from 'nestjs-pino';
/** The reply of either HTTP platform, as far as this controller uses it. */
type Response = { status(code: number): unknown };
import { EVENT_INGRESS, type EventIngress } from '../ingest/ingress';
import {
  type EntitlementAnswer,
  type EntitlementRequest,
  type InboundEvent,
  type Limits,
  NOTIFICATION_EVENT_TYPES,
  type UsageSource,
  SPACE_STREAM_PREFIX,
  checkEntitlement,
  emptyLimits,
  iso,
  periodAt,
  spaceStreamName,
  usageView,
} from '@metering/domain';
import { EVENT_STORE, type EventStore, type StoredEvent } from '@metering/event-store';
import { CatalogService } from '../catalog/catalog.service';
import { type Clock, type IdGenerator } from '../infra/clock';
import { echoableId, parseInbound } from '../ingest/inbound.dto';
import { IngestService, type Outcome } from '../ingest/ingest.service';
import { type BalanceQueries } from '../projection/balance-read-model';
import { Projector } from '../projection/projector';
import { type EntitlementView } from '../projection/entitlement-view';
import { type AppConfig } from '../config';
import { checkSpaceId, intParam, invalid, positionParam } from './api-errors';
import { EntitlementCheckDto } from './entitlement-check.dto';
import {
  BatchExportedDoc,
  EntitlementAnswerDoc,
  ErrorDoc,
  GenerationPerformedDoc,
  POST_EVENTS_BODY,
  SubscriptionBodyDoc,
  SubscriptionChangedDoc,
} from './api-docs.dto';
import { EventsPageDoc, NotificationsPageDoc, PostEventsAnswerDoc, SubscriptionAnswerDoc, UsageViewDoc } from './api-answers.dto';
import { type Metrics } from '../observability/metrics';
import { Scoped } from '../security/scoped';
import { APP_CONFIG, CLOCK, IDS, METRICS } from '../core/tokens';
import { BALANCE_READ_MODEL, ENTITLEMENT_VIEW } from '../projection/tokens';

/** The check's answer (EntitlementAnswerDoc documents it; check-route.ts serialises it by schema). */
export type EntitlementAnswerBody = EntitlementAnswer & { spaceId: string; asOf: string };

export const serializeStored = (e: StoredEvent) => ({
  id: e.id,
  type: e.type,
  stream: e.streamName,
  revision: e.revision,
  position: e.globalPosition.toString(),
  recordedAt: e.recordedAt,
  data: e.data,
});

/** Builds the usage source for a Space from the read model (unknown Space: free, zero usage). */
export async function readUsageSource(readModel: BalanceQueries, spaceId: string, now: number) {
  const row = await readModel.getSpace(spaceId);
  const timeline = row?.timeline ?? [];
  const period = periodAt(timeline, now);
  const used: Limits = await readModel.usedIn(spaceId, period.start);
  const zero: Limits = emptyLimits();
  return { timeline, usedIn: (start: number) => (start === period.start ? used : zero) };
}

/** The entitlement check's path under /v1 (http/check-route.ts serves it without Nest's router). */
export const ENTITLEMENT_CHECK_PATH = 'spaces/:spaceId/entitlements/check';

const INBOUND_TYPES = new Set(['generation-performed', 'batch-exported', 'subscription-changed']);
const SPACE_PARAM = { name: 'spaceId', description: '1-128 letters, digits and . _ : @ -', example: 'acme' };

@ApiTags('spaces')
@ApiExtraModels(GenerationPerformedDoc, BatchExportedDoc, SubscriptionChangedDoc, ErrorDoc)
@ApiBadRequestResponse({ type: ErrorDoc, description: 'a malformed request: the body names the field and the rule' })
@Controller('v1')
export class SpacesController {
  private readonly waitInProcess: boolean;

  constructor(
    @Inject(IngestService) private readonly ingest: IngestService,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceQueries,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(Projector) private readonly projector: Projector,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(IDS) private readonly ids: IdGenerator,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(EVENT_INGRESS) private readonly kafka: EventIngress | null,
    @Inject(METRICS) private readonly metrics: Metrics,
    @Inject(PinoLogger) private readonly logger: PinoLogger,
    @Inject(ENTITLEMENT_VIEW) private readonly view: EntitlementView | null,
  ) {
    this.logger.setContext('api');
    this.waitInProcess = config.roles.has('projector');
  }

  /**
   * One event or an array of inbound events; each gets its own outcome. Embedded: decided and
   * appended now (200). With Kafka: valid events are published to their topics (202, `queued`).
   */
  @Post('events')
  @Scoped('ingest')
  @ApiOperation({ summary: 'Record one inbound event or an array of them; each gets its own outcome (accepted, duplicate, rejected; queued with Kafka)' })
  @ApiBody({ schema: POST_EVENTS_BODY })
  @ApiOkResponse({ type: PostEventsAnswerDoc, description: 'embedded: every event decided and appended (or rejected with field and rule)' })
  @ApiAcceptedResponse({ type: PostEventsAnswerDoc, description: 'with Kafka: valid events published to their inbound topics (outcome queued)' })
  @ApiPayloadTooLargeResponse({ type: ErrorDoc, description: 'the body is larger than MAX_BODY_BYTES' })
  async postEvents(@Body() body: unknown, @Res({ passthrough: true }) res: Response) {
    const items = Array.isArray(body) ? body : [body];
    if (body === undefined || body === null || (typeof body !== 'object'))
      throw invalid([{ field: 'body', rule: 'json_object_or_array', message: 'send one event object or an array of them' }], 400);
    if (items.length === 0 || items.length > this.config.maxEventsPerRequest)
      throw invalid([{ field: 'body', rule: 'array_size', message: `send 1 to ${this.config.maxEventsPerRequest} events per request` }], 400);
    const results: (Outcome & { index: number })[] = new Array(items.length);
    const valid: { index: number; event: InboundEvent }[] = [];
    items.forEach((raw, index) => {
      const parsed = parseInbound(raw);
      if (parsed.ok) valid.push({ index, event: parsed.event });
      else {
        const r = raw as Record<string, unknown> | null;
        results[index] = {
          index,
          outcome: 'rejected',
          // Echoed (and logged) only when id-sized, and escaped.
          eventId: echoableId(r?.eventId),
          spaceId: echoableId(r?.spaceId),
          errors: parsed.errors,
        };
        const t = typeof r?.type === 'string' && INBOUND_TYPES.has(r.type) ? r.type : 'unknown';
        this.rejected(results[index] as Outcome, 'http', t);
      }
    });
    if (this.kafka) {
      await this.kafka.publish(valid.map((v) => v.event));
      for (const v of valid) results[v.index] = { index: v.index, outcome: 'queued', eventId: v.event.eventId, spaceId: v.event.spaceId } as never;
      res.status(HttpStatus.ACCEPTED);
      const n = (k: string) => results.filter((r) => r.outcome === k).length;
      return { queued: n('queued'), rejected: n('rejected'), results };
    }
    res.status(HttpStatus.OK);
    const outcomes = await this.ingest.ingest(valid.map((v) => v.event));
    outcomes.forEach((o, k) => {
      results[valid[k].index] = { index: valid[k].index, ...o };
      if (o.outcome === 'accepted') for (const t of o.recorded) this.metrics.appended.inc({ type: t, source: 'http' });
      else if (o.outcome === 'duplicate') this.metrics.duplicates.inc({ source: 'http' });
      else this.rejected(o, 'http', valid[k].event.type);
    });
    await this.waitForProjection(outcomes);
    const count = (k: string) => results.filter((r) => r.outcome === k).length;
    // One event (not an array) whose eventId was recorded with another payload: 409.
    if (!Array.isArray(body) && results[0]?.outcome === 'conflict') res.status(HttpStatus.CONFLICT);
    return { accepted: count('accepted'), duplicates: count('duplicate'), conflicts: count('conflict'), rejected: count('rejected'), results };
  }

  @Put('spaces/:spaceId/subscription')
  @Scoped('ingest')
  @ApiOperation({ summary: "Change a Space's subscription (plan, cycle); effectiveAt defaults to now" })
  @ApiParam(SPACE_PARAM)
  @ApiBody({ type: SubscriptionBodyDoc })
  @ApiOkResponse({ type: SubscriptionAnswerDoc, description: 'the outcome and the usage view after it' })
  @ApiUnprocessableEntityResponse({ type: ErrorDoc, description: 'refused by the rules (e.g. a plan/cycle pair that does not exist)' })
  async putSubscription(@Param('spaceId') spaceId: string, @Body() body: Record<string, unknown>) {
    checkSpaceId(spaceId);
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw invalid([{ field: 'body', rule: 'json_object', message: 'send {plan, cycle, effectiveAt?, customLimits?}' }], 400);
    const raw = {
      eventId: this.ids.random(),
      effectiveAt: iso(this.clock.now()),
      ...body,
      spaceId,
      type: 'subscription-changed',
    };
    const parsed = parseInbound(raw);
    if (!parsed.ok) {
      this.rejected({ outcome: 'rejected', eventId: echoableId(raw.eventId), spaceId, errors: parsed.errors }, 'http', 'subscription-changed');
      throw invalid(parsed.errors);
    }
    const [outcome] = await this.ingest.ingest([parsed.event]);
    if (outcome.outcome === 'rejected' || outcome.outcome === 'conflict') {
      this.rejected(outcome, 'http', 'subscription-changed');
      throw invalid(outcome.errors, outcome.outcome === 'conflict' ? 409 : undefined);
    }
    if (outcome.outcome === 'accepted') for (const t of outcome.recorded) this.metrics.appended.inc({ type: t, source: 'http' });
    await this.waitForProjection([outcome]);
    return { ...outcome, usage: await this.usage(spaceId) };
  }

  @Get('spaces/:spaceId/usage')
  @Scoped('read')
  @ApiOperation({ summary: 'Plan, cycle, period, next reset and, per pool, used, limit, remaining, percent, over' })
  @ApiParam(SPACE_PARAM)
  @ApiOkResponse({ type: UsageViewDoc })
  async usage(@Param('spaceId') spaceId: string) {
    checkSpaceId(spaceId);
    const now = this.clock.now();
    const source = await readUsageSource(this.readModel, spaceId, now);
    return usageView(spaceId, source, now, this.catalog.catalog);
  }

  /**
   * Scope `read`: the check changes nothing and tells no more than the usage view does; callers
   * that also report usage (AI services) hold `read+ingest`. Served by Fastify without Nest's
   * router (http/check-route.ts: same guard, same errors); answered synchronously when the Space
   * is in the entitlement view.
   */
  @Post(ENTITLEMENT_CHECK_PATH)
  @HttpCode(200)
  @Scoped('read')
  @ApiOperation({
    summary: 'May this Space spend N credits on feature F (or export a batch of N images)?',
    description:
      'Answered from an in-memory view kept fresh from the store (see `asOf` in the answer: every event acknowledged before it is counted; the bound is ENTITLEMENT_VIEW_POLL_MS plus one read of the store). A Space not in the view is loaded from the read model and its stream.',
  })
  @ApiParam(SPACE_PARAM)
  @ApiBody({ type: EntitlementCheckDto })
  @ApiOkResponse({ type: EntitlementAnswerDoc })
  @ApiUnprocessableEntityResponse({ type: ErrorDoc, description: 'an unknown feature or platform' })
  check(@Param('spaceId') spaceId: string, @Body() body: EntitlementCheckDto): EntitlementAnswerBody | Promise<EntitlementAnswerBody> {
    checkSpaceId(spaceId);
    const request = EntitlementCheckDto.toRequest(body);
    const now = this.clock.now();
    const view = this.view;
    if (view !== null) {
      // From memory (a miss loads the Space from the read model and its stream, then keeps it fresh).
      const s = view.source(spaceId, now);
      return s instanceof Promise ? s.then((source) => this.answer(spaceId, source, request, now, view.asOf)) : this.answer(spaceId, s, request, now, view.asOf);
    }
    return readUsageSource(this.readModel, spaceId, now).then((source) => this.answer(spaceId, source, request, now, iso(now)));
  }

  private answer(spaceId: string, source: UsageSource, request: EntitlementRequest, now: number, asOf: string): EntitlementAnswerBody {
    const result = checkEntitlement(source, request, now, this.catalog.catalog);
    if (!result.ok) throw invalid([result.rejection]);
    const a = result.answer;
    return {
      spaceId,
      allowed: a.allowed,
      pool: a.pool,
      cost: a.cost,
      used: a.used,
      limit: a.limit,
      remaining: a.remaining,
      reason: a.reason,
      message: a.message,
      catalogVersion: a.catalogVersion,
      periodEnd: a.periodEnd,
      asOf,
    };
  }

  @Get('spaces/:spaceId/events')
  @Scoped('read')
  @ApiOperation({ summary: "The Space's stream, paged, for audits" })
  @ApiParam(SPACE_PARAM)
  @ApiQuery({ name: 'fromRevision', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1-1000, default 100' })
  @ApiOkResponse({ type: EventsPageDoc })
  async events(@Param('spaceId') spaceId: string, @Query('fromRevision') from?: string, @Query('limit') limit?: string) {
    checkSpaceId(spaceId);
    const fromRevision = intParam('fromRevision', from, 0, 0, Number.MAX_SAFE_INTEGER);
    const max = intParam('limit', limit, 100, 1, 1000);
    const events = await this.store.readStream(spaceStreamName(spaceId), { fromRevision, maxCount: max });
    return {
      spaceId,
      stream: spaceStreamName(spaceId),
      events: events.map(serializeStored),
      nextRevision: events.length === max ? fromRevision + max : null,
    };
  }

  /** Threshold and reset events in store order: the outbox every relay reads. */
  @Get('notifications')
  @Scoped('read')
  @ApiOperation({ summary: 'Threshold-crossed and period-reset events in store order; `next` is the `since` of the next page' })
  @ApiQuery({ name: 'since', required: false, type: String, description: 'a `next` value this endpoint returned (an opaque store position), or absent/0 for the start' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1-1000, default 100' })
  @ApiOkResponse({ type: NotificationsPageDoc })
  async notifications(@Query('since') since?: string, @Query('limit') limit?: string) {
    const after = positionParam('since', since);
    // Positions are opaque store tokens (sparse on KurrentDB): only a value the store handed out is accepted.
    if (after !== 0n && !(await this.store.hasPosition(after)))
      throw invalid([{ field: 'since', rule: 'position', message: 'since must be a `next` value returned by this endpoint' }], 400);
    const max = intParam('limit', limit, 100, 1, 1000);
    const events = await this.store.readAll({ after, maxCount: max, streamPrefix: SPACE_STREAM_PREFIX, types: [...NOTIFICATION_EVENT_TYPES] });
    return {
      notifications: events.map(serializeStored),
      next: events.length ? events[events.length - 1].globalPosition.toString() : after.toString(),
    };
  }

  /** Counts and logs (with spaceId and eventId) an event the API refused. */
  private rejected(o: Outcome, source: string, type?: string): void {
    if (o.outcome !== 'rejected' && o.outcome !== 'conflict') return;
    this.metrics.rejected.inc({ type: type ?? 'unknown', source });
    this.logger.info({ spaceId: o.spaceId, eventId: o.eventId, errors: o.errors }, 'event rejected');
  }

  /** Read-your-writes: waits (up to 5 s) until the balance projection has applied these outcomes. */
  private async waitForProjection(outcomes: Outcome[]): Promise<void> {
    let max = 0n;
    for (const o of outcomes) if (o.outcome === 'accepted' && BigInt(o.position) > max) max = BigInt(o.position);
    if (max === 0n) return;
    if (this.waitInProcess) {
      await this.projector.waitFor(max, 5000);
      return;
    }
    // The projector runs in another process (ROLES without projector): poll the read model's checkpoint.
    const deadline = Date.now() + 5000;
    while ((await this.readModel.checkpoint()) < max && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}
