/**
 * The pages (issue 15): GET /ui/ (ops console), GET /ui/spaces/:spaceId (usage screen) and its
 * live fragment, the console session, re-drive, and the static assets. Not behind the API-key
 * guard: each route decides with ui-access.ts. A page view costs a few indexed reads.
 */
import { Body, Controller, Delete, Get, HttpCode, HttpException, HttpStatus, Inject, type OnModuleInit, Param, Post, Query, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import { PinoLogger } from 'nestjs-pino';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { createKafkaJsMessaging } from '@metering/messaging';
import { findDeadLetter, redrive } from '../admin/dead-letter-ops';
import { CatalogService } from '../catalog/catalog.service';
import { type AppConfig } from '../config';
import { SPACE_ID } from '../http/api-errors';
import { type Clock } from '../infra/clock';
import { type Metrics } from '../observability/metrics';
import { type BalanceQueries } from '../projection/balance-read-model';
import { type BreakdownReadModel } from '../projection/breakdown/breakdown';
import { matchKey } from '../security/api-keys';
import { ASSET_VERSION, UI_CSS, UI_JS } from './assets';
import { consolePage, loginPage, readConsole } from './console';
import { messagePage, screenLive, screenPage } from './html';
import { readScreen } from './screen-data';
import { csrfOf, signSession } from './signed-links';
import { SESSION_COOKIE, SESSION_TTL_MS, type UiRequest, accessOf, canRead, linkAccess, sameSiteWrite } from './ui-access';
import { APP_CONFIG, CLOCK, METRICS } from '../core/tokens';
import { BALANCE_READ_MODEL, BREAKDOWN_READ_MODEL } from '../projection/tokens';

type Reply = { header(name: string, value: string): unknown; status(code: number): unknown; redirect?(url: string, code?: number): unknown };

export const REFRESH_MS = 5000;

/** CSP of every page: nothing inline, nothing from elsewhere. */
export function csp(frameAncestors: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    `frame-ancestors ${frameAncestors}`,
  ].join('; ');
}

@ApiExcludeController()
@Controller('ui')
export class UiController implements OnModuleInit {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceQueries,
    @Inject(BREAKDOWN_READ_MODEL) private readonly breakdown: BreakdownReadModel,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(METRICS) private readonly metrics: Metrics,
    @Inject(PinoLogger) logger: PinoLogger,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {
    logger.setContext('ui');
    if (config.ui.linkSecretSource === 'random')
      logger.warn(
        'UI_LINK_SECRET is not set: signed usage links and console sessions use a random secret of this process (they stop working at a restart and are not shared by replicas); set UI_LINK_SECRET (>= 32 characters) in production',
      );
  }

  /**
   * GET /ui/ (with the slash, as the issue names it) serves the console too: Nest normalizes
   * route paths to no trailing slash, so it is registered on the HTTP platform directly.
   */
  onModuleInit(): void {
    const platform = this.adapterHost.httpAdapter?.getInstance?.() as
      | { get?: (path: string, handler: (req: UiRequest, reply: Reply) => Promise<string>) => unknown; hasRoute?: (o: { url: string; method: string }) => boolean }
      | undefined;
    if (!platform?.get || platform.hasRoute?.({ url: '/ui/', method: 'GET' })) return;
    platform.get('/ui/', (req, reply) => this.console(req, reply));
  }

  private html(res: Reply, status: number, body: string, frameable = false): string {
    res.status(status);
    res.header('content-type', 'text/html; charset=utf-8');
    res.header('content-security-policy', csp(frameable ? this.config.ui.frameAncestors : "'none'"));
    res.header('x-content-type-options', 'nosniff');
    res.header('referrer-policy', 'no-referrer');
    res.header('cache-control', 'no-store');
    if (!frameable) res.header('x-frame-options', 'DENY');
    return body;
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Query('v') v: string | undefined, @Res({ passthrough: true }) res: Reply): string {
    const body = file === 'ui.css' ? UI_CSS : file === 'ui.js' ? UI_JS : null;
    if (body === null) throw new HttpException({ error: 'not_found', message: `no asset ${file}` }, HttpStatus.NOT_FOUND);
    res.header('content-type', file.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
    res.header('x-content-type-options', 'nosniff');
    res.header('cache-control', v === ASSET_VERSION ? 'public, max-age=31536000, immutable' : 'no-cache');
    return body;
  }

  /** The ops console; with API keys and no session, the sign-in form. */
  @Get()
  async console(@Req() req: UiRequest, @Res({ passthrough: true }) res: Reply): Promise<string> {
    const access = accessOf(this.config, req, this.clock.now());
    if (!canRead(access)) return this.html(res, 401, loginPage());
    await this.catalog.refresh();
    const data = await readConsole(this.store, this.readModel, this.breakdown, this.catalog.catalog.versions, this.metrics, this.config.kafka !== null);
    return this.html(
      res,
      200,
      consolePage(data, {
        canAdmin: access.open || access.scopes.has('admin'),
        kafka: this.config.kafka !== null,
        csrf: access.session ? csrfOf(this.config.ui.linkSecret, access.session) : '',
        signedIn: access.session !== null,
        keysConfigured: this.config.apiKeys.length > 0,
        secretIsRandom: this.config.ui.linkSecretSource === 'random',
      }),
    );
  }

  /** Signs the console in with an API key (checked once, never stored): a session cookie with its scopes. */
  @Post('session')
  @HttpCode(200)
  session(@Body() body: unknown, @Req() req: UiRequest, @Res({ passthrough: true }) res: Reply) {
    if (this.config.apiKeys.length === 0) return { signedIn: false, open: true, message: 'API_KEYS is not set: the console is open' };
    const key = typeof body === 'object' && body !== null ? (body as { key?: unknown }).key : undefined;
    const found = typeof key === 'string' && key !== '' ? matchKey(this.config.apiKeys, key) : null;
    if (!found) throw new HttpException({ error: 'unauthorized', message: 'the API key given is not valid' }, HttpStatus.UNAUTHORIZED);
    const token = signSession(this.config.ui.linkSecret, [...found.scopes], this.clock.now() + SESSION_TTL_MS);
    const secure = req.protocol === 'https' ? '; Secure' : '';
    res.header('set-cookie', `${SESSION_COOKIE}=${token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}${secure}`);
    res.header('cache-control', 'no-store');
    return { signedIn: true, scopes: [...found.scopes] };
  }

  @Delete('session')
  @HttpCode(200)
  signOut(@Res({ passthrough: true }) res: Reply) {
    res.header('set-cookie', `${SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0`);
    return { signedIn: false };
  }

  /** The console's "find a Space" form. */
  @Get('spaces')
  find(@Query('spaceId') spaceId: string | undefined, @Res({ passthrough: true }) res: Reply): string {
    const id = (spaceId ?? '').trim();
    if (!SPACE_ID.test(id)) return this.html(res, 400, messagePage('Not a Space id', 'A Space id is 1-128 letters, digits and . _ : @ -.', '<p><a href="/ui/">Back to the console</a></p>'));
    res.status(303);
    res.header('location', `/ui/spaces/${encodeURIComponent(id)}`);
    return '';
  }

  /** Whether this request may read the Space; an HTML refusal otherwise. */
  private allowed(req: UiRequest, spaceId: string): { ok: true; viaLink: boolean; token: string | null } | { ok: false; status: number; title: string; message: string } {
    if (!SPACE_ID.test(spaceId)) return { ok: false, status: 400, title: 'Not a Space id', message: 'A Space id is 1-128 letters, digits and . _ : @ -.' };
    const now = this.clock.now();
    const link = linkAccess(this.config, req, spaceId, now);
    if (link) {
      if (link.ok) return { ok: true, viaLink: true, token: (req.query as { t: string }).t };
      const message =
        link.reason === 'expired'
          ? 'This link has expired: open the usage screen again from the app.'
          : link.reason === 'other_space'
            ? 'This link is for another Space.'
            : 'This link is not valid.';
      return { ok: false, status: 403, title: 'Link refused', message };
    }
    if (canRead(accessOf(this.config, req, now))) return { ok: true, viaLink: false, token: null };
    return { ok: false, status: 401, title: 'Sign-in needed', message: 'Open this screen with a signed link from the app, or sign in on the ops console with an API key.' };
  }

  @Get('spaces/:spaceId')
  async screen(@Param('spaceId') spaceId: string, @Req() req: UiRequest, @Res({ passthrough: true }) res: Reply): Promise<string> {
    const a = this.allowed(req, spaceId);
    if (!a.ok) return this.html(res, a.status, messagePage(a.title, a.message), true);
    const data = await readScreen(this.readModel, this.breakdown, this.catalog.catalog, spaceId, this.clock.now());
    const refreshUrl = `/ui/spaces/${encodeURIComponent(spaceId)}/live${a.token ? `?t=${encodeURIComponent(a.token)}` : ''}`;
    return this.html(res, 200, screenPage(data, { refreshUrl, refreshMs: REFRESH_MS, backToConsole: !a.viaLink }), true);
  }

  /** The live part of the screen, for the refresh script (same data, same renderer). */
  @Get('spaces/:spaceId/live')
  async live(@Param('spaceId') spaceId: string, @Req() req: UiRequest, @Res({ passthrough: true }) res: Reply): Promise<string> {
    const a = this.allowed(req, spaceId);
    if (!a.ok) return this.html(res, a.status, messagePage(a.title, a.message), true);
    const data = await readScreen(this.readModel, this.breakdown, this.catalog.catalog, spaceId, this.clock.now());
    return this.html(res, 200, screenLive(data), true);
  }

  /** Re-drives one dead letter to its original topic (admin; needs Kafka). */
  @Post('dead-letters/:id/redrive')
  @HttpCode(200)
  async redrive(@Param('id') id: string, @Req() req: UiRequest) {
    const access = accessOf(this.config, req, this.clock.now());
    if (!access.open && !access.scopes.has('admin'))
      throw new HttpException({ error: 'forbidden', message: 're-drive needs an API key with the "admin" scope', requiredScope: 'admin' }, access.scopes.size ? HttpStatus.FORBIDDEN : HttpStatus.UNAUTHORIZED);
    if (!sameSiteWrite(this.config, req, access)) throw new HttpException({ error: 'forbidden', message: 'cross-site request refused (CSRF token or Origin)' }, HttpStatus.FORBIDDEN);
    if (!this.config.kafka) throw new HttpException({ error: 'conflict', message: 're-drive sends the letter back to Kafka: this instance has no KAFKA_BROKERS' }, HttpStatus.CONFLICT);
    const entry = await findDeadLetter(this.store, id);
    if (!entry) throw new HttpException({ error: 'not_found', message: `no dead letter ${id}` }, HttpStatus.NOT_FOUND);
    const messaging = createKafkaJsMessaging(this.config.kafka.connection);
    const producer = messaging.producer();
    try {
      return await redrive(this.store, producer, entry, 'ops console', () => this.clock.now());
    } finally {
      await producer.close();
    }
  }
}
