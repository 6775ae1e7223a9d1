/**
 * Builds the HTTP application on Fastify: the body limit (MAX_BODY_BYTES, 413 beyond), JSON bodies
 * only (415 otherwise) no deeper than MAX_JSON_DEPTH (400 beyond), request, header and idle
 * timeouts (slow clients are cut), the open-mode Host and Origin checks, the API's error shape for
 * the platform's own errors, pino as the logger, OpenAPI at /docs, the entitlement check served
 * without Nest's router (check-route.ts). Used by main.ts and by tests
 * that run several apps in one process.
 */
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import type { EventStore } from '@metering/event-store';
import { AppModule, type AppOverrides } from '../app.module';
import type { AppConfig } from '../config';
import type { BalanceReadModel } from '../projection/balance-read-model';
import { openModeRefusal } from '../security/open-mode';
import { HttpErrorsFilter, JSON_DEPTH_ERROR } from './http-errors.filter';
import { setupOpenApi } from './openapi';
import { serveCheckWithoutRouter } from './check-route';
import { SpacesController } from './spaces.controller';

/**
 * True when `text` nests no deeper than `max` arrays/objects. A linear scan before JSON.parse, so
 * a hostile body (a megabyte of `[`) costs one pass, not a parse and a recursive walk.
 */
export function jsonDepthWithin(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return false;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return true;
}

const parseError = (code: string, message: string) => Object.assign(new Error(message), { code, statusCode: 400 });

export async function createHttpApp(
  config: AppConfig,
  storage: { store: EventStore; readModel: BalanceReadModel },
  overrides: AppOverrides = {},
  options: { bufferLogs?: boolean } = {},
): Promise<NestFastifyApplication> {
  const h = config.http;
  const adapter = new FastifyAdapter({
    bodyLimit: config.maxBodyBytes,
    trustProxy: false,
    // One spaceId limit everywhere (MAX_ID_LENGTH): the router passes a parameter of any length on
    // (the request line is bounded by Node's header size limit) and checkSpaceId names the rule.
    routerOptions: { maxParamLength: 65_536 },
    // Slow clients: the whole request within requestTimeout (headers within headersTimeout), an
    // idle connection closed after idleTimeout; Node checks pending requests every second.
    requestTimeout: h.requestTimeoutMs,
    connectionTimeout: h.idleTimeoutMs,
    keepAliveTimeout: h.keepAliveTimeoutMs,
    http: {
      requestTimeout: h.requestTimeoutMs,
      headersTimeout: h.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(h.headersTimeoutMs / 4))),
    },
  });
  const fastify = adapter.getInstance();
  // application/json only: no form bodies (a plain HTML form cannot post here), no text/plain.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.maxBodyBytes }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0 || text.trim() === '') return done(parseError('FST_ERR_CTP_EMPTY_JSON_BODY', 'the body is empty'), undefined);
    if (!jsonDepthWithin(text, h.maxJsonDepth)) return done(parseError(JSON_DEPTH_ERROR, `the body nests deeper than ${h.maxJsonDepth} levels`), undefined);
    try {
      // A "__proto__" key becomes an own property (JSON.parse never sets a prototype); the
      // validation refuses it as an unknown field.
      done(null, JSON.parse(text));
    } catch (err) {
      done(parseError('FST_ERR_CTP_INVALID_JSON_BODY', (err as Error).message), undefined);
    }
  });
  if (config.apiKeys.length === 0)
    fastify.addHook('onRequest', (req, reply, done) => {
      const refused = openModeRefusal(req.method, req.headers);
      if (!refused) return done();
      reply.code(refused.status).header('content-type', 'application/json; charset=utf-8').send(refused.body);
    });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, storage, overrides), adapter, {
    bufferLogs: options.bufferLogs ?? true,
    // Nest would register its own JSON and form parsers: the one above is the only one.
    bodyParser: false,
  });
  // The entitlement check without Nest's router (same guard, errors and OpenAPI entry): check-route.ts.
  if (config.roles.has('api')) serveCheckWithoutRouter(fastify, config.apiKeys, () => app.get(SpacesController));
  app.useLogger(app.get(Logger));
  app.useGlobalFilters(new HttpErrorsFilter(adapter, config.maxBodyBytes, h.maxJsonDepth));
  setupOpenApi(app);
  return app;
}
