import { type ArgumentsHost, Catch, HttpException } from '@nestjs/common';
import { BaseExceptionFilter, type HttpAdapterHost } from '@nestjs/core';

/** Code of the body parser's error for a body nested deeper than MAX_JSON_DEPTH. */
export const JSON_DEPTH_ERROR = 'METERING_JSON_TOO_DEEP';

type FastifyLikeError = { statusCode?: number; code?: string; message?: string };
type Reply = { status(code: number): Reply; header(name: string, value: string): Reply; send(body: unknown): unknown };

/**
 * Turns the HTTP platform's own errors (body too large, malformed JSON, unsupported media type)
 * into the API's error shape, `{error, errors: [{field, rule, message}]}`. Everything else goes to
 * Nest's default handling (HttpExceptions keep their bodies; anything unknown is a plain 500).
 */
@Catch()
export class HttpErrorsFilter extends BaseExceptionFilter {
  constructor(
    applicationRef: HttpAdapterHost['httpAdapter'],
    private readonly maxBodyBytes: number,
    private readonly maxJsonDepth = 32,
  ) {
    super(applicationRef);
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    // Fastify's own errors (body parsing, limits) reach filters wrapped in an HttpException.
    const e = exception instanceof HttpException ? exception.cause : exception;
    if (e && typeof e === 'object' && (!(exception instanceof HttpException) || typeof (e as FastifyLikeError).code === 'string')) {
      const mapped = this.map(e as FastifyLikeError);
      if (mapped) {
        const reply = host.switchToHttp().getResponse<Reply>();
        reply.status(mapped.status).header('content-type', 'application/json; charset=utf-8').send(mapped.body);
        return;
      }
    }
    super.catch(exception, host);
  }

  private map(e: FastifyLikeError): { status: number; body: unknown } | null {
    const rejection = (error: string, field: string, rule: string, message: string) => ({ error, errors: [{ field, rule, message }] });
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return {
          status: 413,
          body: rejection('payload_too_large', 'body', 'max_body_bytes', `the request body is larger than ${this.maxBodyBytes} bytes (MAX_BODY_BYTES)`),
        };
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return { status: 400, body: rejection('bad_request', 'body', 'json', `the body is not valid JSON: ${e.message ?? ''}`) };
      case JSON_DEPTH_ERROR:
        return {
          status: 400,
          body: rejection('bad_request', 'body', 'max_json_depth', `the body nests deeper than ${this.maxJsonDepth} levels (MAX_JSON_DEPTH)`),
        };
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return { status: 415, body: rejection('unsupported_media_type', 'content-type', 'application_json', 'send the body as application/json (the only media type this API parses)') };
      default:
        if (e.statusCode === 413)
          return { status: 413, body: rejection('payload_too_large', 'body', 'max_body_bytes', `the request body is larger than ${this.maxBodyBytes} bytes (MAX_BODY_BYTES)`) };
        if (e instanceof SyntaxError) return { status: 400, body: rejection('bad_request', 'body', 'json', `the body is not valid JSON: ${e.message}`) };
        return null;
    }
  }
}
