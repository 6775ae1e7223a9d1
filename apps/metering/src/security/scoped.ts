import { applyDecorators } from '@nestjs/common';
import { ApiExtension, ApiForbiddenResponse, ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { RequireScope, type Scope } from './api-keys';

/** OpenAPI security scheme names (see http/openapi.ts). */
export const BEARER_SCHEME = 'bearer';
export const API_KEY_SCHEME = 'api-key';

/**
 * The route needs an API key with `scope`: enforced by ApiKeyGuard, documented in OpenAPI as
 * either scheme (Bearer or x-api-key) with the scope, plus `x-required-scope`.
 */
export const Scoped = (scope: Scope) =>
  applyDecorators(
    RequireScope(scope),
    ApiSecurity(BEARER_SCHEME, [scope]),
    ApiSecurity(API_KEY_SCHEME, [scope]),
    ApiExtension('x-required-scope', scope),
    ApiUnauthorizedResponse({ description: 'no API key, or not a valid one: the body names the header to send' }),
    ApiForbiddenResponse({ description: `the API key lacks the "${scope}" scope: the body names it` }),
  );
