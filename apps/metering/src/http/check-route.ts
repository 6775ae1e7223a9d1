/**
 * The entitlement check, the service's hottest route, served by Fastify without Nest's router
 * (issue 14 part 4). Nest still declares the route: SpacesController.check with its decorators is
 * the one definition of its path, its scope, its OpenAPI entry and its answer; Nest registers it with
 * Fastify as usual. The `onRoute` hook below then swaps the handler Nest registered (an execution
 * context, the guards consumer, the parameter factories, the interceptor chain and the response
 * controller per request) for a direct one that does what they do for this route:
 *
 *  - the same scope check: ApiKeyGuard.authorize with the scope of the method's @Scoped (the only
 *    global guard; http.module.ts), before the body is looked at;
 *  - the same controller method, with the path parameter and the parsed body;
 *  - errors through the same exception layer: Fastify's error handler is Nest's (with the global
 *    HttpErrorsFilter), so a 400/401/403/422 has the API's shape, an unknown error is a 500;
 *  - an empty Space id is a 404, as Nest's Fastify adapter makes it;
 *  - the answer serialised by a response schema (fast-json-stringify) instead of JSON.stringify.
 *
 * Everything else of the request (the open-mode Host/Origin hook, Nest's middleware with the
 * request logger, the body parser and its limits) is Fastify's, before the handler, as for every
 * route. No interceptor or pipe is registered globally; a global one added later would not run here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ApiKeyGuard, SCOPE_KEY, type Scope } from '../security/api-keys';
import { ENTITLEMENT_CHECK_PATH, SpacesController } from './spaces.controller';

/** The answer's fields (EntitlementAnswerDoc): required, so a field the controller stops sending fails loudly. */
export const ENTITLEMENT_ANSWER_SCHEMA = {
  type: 'object',
  properties: {
    spaceId: { type: 'string' },
    allowed: { type: 'boolean' },
    pool: { type: 'string' },
    cost: { type: 'number' },
    used: { type: 'number' },
    limit: { type: 'number' },
    remaining: { type: 'number' },
    reason: { type: 'string' },
    message: { type: 'string' },
    catalogVersion: { type: 'number' },
    periodEnd: { type: ['string', 'null'] },
    asOf: { type: 'string' },
  },
  required: ['spaceId', 'allowed', 'pool', 'cost', 'used', 'limit', 'remaining', 'reason', 'message', 'catalogVersion', 'periodEnd', 'asOf'],
} as const;

export const ENTITLEMENT_CHECK_URL = `/v1/${ENTITLEMENT_CHECK_PATH}`;

/**
 * Adds the hook; call it after NestFactory.create and before the app's init (when Nest registers
 * its routes). `controller` is asked for at the first request (the instance Nest made).
 */
export function serveCheckWithoutRouter(fastify: FastifyInstance, apiKeys: ConstructorParameters<typeof ApiKeyGuard>[0], controller: () => SpacesController): void {
  const scope = Reflect.getMetadata(SCOPE_KEY, SpacesController.prototype.check) as Scope | undefined;
  if (scope === undefined) throw new Error('SpacesController.check has no @Scoped: the entitlement check would be open');
  const guard = new ApiKeyGuard(apiKeys);
  let spaces: SpacesController | null = null;
  const handler = (req: FastifyRequest, reply: FastifyReply) => {
    const spaceId = (req.params as { spaceId: string }).spaceId;
    if (spaceId === '') {
      reply.callNotFound();
      return undefined;
    }
    guard.authorize(scope, req, reply);
    return (spaces ??= controller()).check(spaceId, req.body as never);
  };
  let swapped = false;
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (route.url !== ENTITLEMENT_CHECK_URL || route.method !== 'POST') return;
    route.handler = handler;
    route.schema = { ...route.schema, response: { 200: ENTITLEMENT_ANSWER_SCHEMA } };
    swapped = true;
  });
  // Nest registers its routes before Fastify is ready: a route that moved must not go unnoticed.
  fastify.addHook('onReady', (done) => done(swapped ? undefined : new Error(`the entitlement check was not registered at POST ${ENTITLEMENT_CHECK_URL}: check-route.ts serves nothing`)));
}
