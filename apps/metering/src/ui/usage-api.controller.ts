/**
 * JSON routes of issue 15, next to the /v1 API:
 *  - GET  /v1/spaces/:spaceId/usage/breakdown  (read): who used the pools and with which feature;
 *  - POST /v1/spaces/:spaceId/usage-links      (ingest or admin): a short-lived signed URL of the
 *    Space's usage screen, for the product's app to show in an iframe or web view.
 */
import { Body, Controller, Get, HttpCode, HttpException, HttpStatus, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { ApiBody, ApiExtension, ApiForbiddenResponse, ApiOperation, ApiParam, ApiQuery, ApiSecurity, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { iso, parseInstant, periodAt, emptyLimits } from '@metering/domain';
import { type AppConfig } from '../config';
import { checkSpaceId, invalid } from '../http/api-errors';
import { type Clock } from '../infra/clock';
import { type BalanceQueries } from '../projection/balance-read-model';
import { type BreakdownReadModel } from '../projection/breakdown/breakdown';
import { matchKey, presentedKey } from '../security/api-keys';
import { API_KEY_SCHEME, BEARER_SCHEME, Scoped } from '../security/scoped';
import { POOL_LABELS } from './screen-data';
import { signUsageLink } from './signed-links';
import type { UiRequest } from './ui-access';
import { APP_CONFIG, CLOCK } from '../core/tokens';
import { BALANCE_READ_MODEL, BREAKDOWN_READ_MODEL } from '../projection/tokens';

const SPACE_PARAM = { name: 'spaceId', description: '1-128 letters, digits and . _ : @ -', example: 'acme' };

@ApiTags('spaces')
@Controller('v1')
export class UsageApiController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceQueries,
    @Inject(BREAKDOWN_READ_MODEL) private readonly breakdown: BreakdownReadModel,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get('spaces/:spaceId/usage/breakdown')
  @Scoped('read')
  @ApiOperation({ summary: 'Usage of one period by member (userId) and by feature; the running period unless periodStart is given' })
  @ApiParam(SPACE_PARAM)
  @ApiQuery({ name: 'periodStart', required: false, description: 'ISO-8601 start of a period (as in the usage view); default the running period' })
  async breakdownOf(@Param('spaceId') spaceId: string, @Query('periodStart') periodStart?: string) {
    checkSpaceId(spaceId);
    let start: number;
    let end: number | null = null;
    if (periodStart !== undefined && periodStart !== '') {
      start = parseInstant(periodStart);
      if (Number.isNaN(start)) throw invalid([{ field: 'periodStart', rule: 'iso_instant', message: 'periodStart must be an ISO-8601 instant' }], 400);
    } else {
      const row = await this.readModel.getSpace(spaceId);
      const period = periodAt(row?.timeline ?? [], this.clock.now());
      start = period.start;
      end = period.end;
    }
    const rows = await this.breakdown.forPeriod(spaceId, start);
    const sum = (key: (r: (typeof rows)[number]) => string) => {
      const out = new Map<string, { used: { ai_image_credits: number; ai_video_credits: number; batch_exports: number }; events: number }>();
      for (const r of rows) {
        const k = key(r);
        const e = out.get(k) ?? { used: emptyLimits(), events: 0 };
        for (const p of Object.keys(POOL_LABELS) as (keyof typeof POOL_LABELS)[]) e.used[p] += r.used[p];
        e.events += r.events;
        out.set(k, e);
      }
      return [...out.entries()].map(([k, v]) => ({ key: k, ...v }));
    };
    return {
      spaceId,
      periodStart: iso(start),
      periodEnd: end === null ? null : iso(end),
      byMember: sum((r) => r.userId).map(({ key, ...v }) => ({ userId: key, ...v })),
      byFeature: sum((r) => r.feature).map(({ key, ...v }) => ({ feature: key, ...v })),
      rows: rows.map((r) => ({ userId: r.userId, feature: r.feature, used: r.used, events: r.events })),
    };
  }

  /**
   * Scope `ingest` or `admin` (the guard takes one scope per route, so this route checks itself):
   * the product's backend, which reports usage, asks for links for its users' Spaces.
   */
  @Post('spaces/:spaceId/usage-links')
  @HttpCode(201)
  @ApiSecurity(API_KEY_SCHEME, ['ingest'])
  @ApiSecurity(BEARER_SCHEME, ['ingest'])
  @ApiExtension('x-required-scope', 'ingest')
  @ApiUnauthorizedResponse({ description: 'no API key, or not a valid one: the body names the header to send' })
  @ApiForbiddenResponse({ description: 'the API key has neither the "ingest" nor the "admin" scope' })
  @ApiOperation({ summary: 'A short-lived signed URL of the Space usage screen (/ui/spaces/:spaceId?t=...), for an iframe or web view; scope ingest or admin' })
  @ApiParam(SPACE_PARAM)
  @ApiBody({ required: false, schema: { type: 'object', properties: { ttlSeconds: { type: 'integer', minimum: 30, description: 'at most UI_LINK_TTL_SECONDS (the default)' } } } })
  createLink(@Param('spaceId') spaceId: string, @Body() body: unknown, @Req() req: UiRequest) {
    if (this.config.apiKeys.length > 0) {
      const presented = presentedKey(req.headers);
      if (!presented)
        throw new HttpException(
          { error: 'unauthorized', message: 'an API key is required: send "Authorization: Bearer <key>" or "x-api-key: <key>" (a key with the "ingest" or "admin" scope)', requiredScope: 'ingest' },
          HttpStatus.UNAUTHORIZED,
        );
      const key = matchKey(this.config.apiKeys, presented);
      if (!key) throw new HttpException({ error: 'unauthorized', message: 'the API key sent is not valid', requiredScope: 'ingest' }, HttpStatus.UNAUTHORIZED);
      if (!key.scopes.has('ingest') && !key.scopes.has('admin'))
        throw new HttpException({ error: 'forbidden', message: 'this API key lacks the "ingest" or "admin" scope needed to make usage links', requiredScope: 'ingest', keyScopes: [...key.scopes] }, HttpStatus.FORBIDDEN);
    }
    checkSpaceId(spaceId);
    const max = this.config.ui.linkTtlSeconds;
    let ttl = max;
    const raw = typeof body === 'object' && body !== null ? (body as { ttlSeconds?: unknown }).ttlSeconds : undefined;
    if (raw !== undefined) {
      if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 30 || raw > max)
        throw invalid([{ field: 'ttlSeconds', rule: 'range', message: `ttlSeconds must be an integer from 30 to ${max} (UI_LINK_TTL_SECONDS)` }], 400);
      ttl = raw;
    }
    const expiresAt = this.clock.now() + ttl * 1000;
    const token = signUsageLink(this.config.ui.linkSecret, spaceId, expiresAt);
    const path = `/ui/spaces/${encodeURIComponent(spaceId)}?t=${token}`;
    const host = typeof req.headers.host === 'string' ? req.headers.host : `${this.config.host}:${this.config.port}`;
    return { spaceId, path, url: `${req.protocol ?? 'http'}://${host}${path}`, expiresAt: iso(expiresAt), ttlSeconds: ttl };
  }
}
