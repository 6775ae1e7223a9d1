/**
 * OpenAPI, generated from the controllers and the DTO classes: the document at /docs-json and the
 * Swagger UI at /docs. The UI's assets come from swagger-ui-dist (a dependency of
 * @nestjs/swagger). On Fastify, @nestjs/swagger serves them with @fastify/static; when that package
 * is not installed they are served here by a small route instead (a fixed list of files, no paths
 * from the request reach the file system).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { API_KEY_SCHEME, BEARER_SCHEME } from '../security/scoped';

export function openApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('metering')
    .setDescription(
      'Usage metering for Spaces: AI image credits, AI video credits and batch exports. ' +
        'Routes that need an API key list it under `security` with the scope (read, ingest, admin); ' +
        'send it as `Authorization: Bearer <key>` or `x-api-key: <key>`. Health, metrics and these docs are open.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'an API key from API_KEYS' }, BEARER_SCHEME)
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key', description: 'an API key from API_KEYS' }, API_KEY_SCHEME)
    .build();
  return SwaggerModule.createDocument(app, config);
}

function hasFastifyStatic(): boolean {
  try {
    require.resolve('@fastify/static');
    return true;
  } catch {
    return false;
  }
}

const ASSETS = ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png', 'favicon-16x16.png', 'index.css'];
const TYPES: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'application/javascript; charset=utf-8', '.png': 'image/png' };

type FastifyLike = {
  get(path: string, handler: (req: unknown, reply: { header(n: string, v: string): unknown; send(b: unknown): unknown }) => unknown): unknown;
};

export function setupOpenApi(app: INestApplication, docsPath = 'docs'): { ui: 'swagger-ui'; assets: '@fastify/static' | 'built-in' } {
  const document = openApiDocument(app);
  const adapter = app.getHttpAdapter();
  const fastify = adapter.getType() === 'fastify';
  if (!fastify || hasFastifyStatic()) {
    SwaggerModule.setup(docsPath, app, document, { jsonDocumentUrl: `${docsPath}-json`, raw: ['json'] });
    return { ui: 'swagger-ui', assets: '@fastify/static' };
  }
  // No @fastify/static: serve the few UI assets ourselves, and let SwaggerModule serve the rest.
  const { getAbsoluteFSPath } = require('swagger-ui-dist') as { getAbsoluteFSPath(): string };
  const dir = getAbsoluteFSPath();
  const instance = adapter.getInstance() as FastifyLike;
  for (const name of ASSETS) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    let body: Buffer | null = null;
    instance.get(`/${docsPath}/${name}`, (_req, reply) => {
      body ??= fs.readFileSync(file);
      reply.header('content-type', TYPES[path.extname(name)] ?? 'application/octet-stream');
      reply.header('cache-control', 'public, max-age=86400');
      return reply.send(body);
    });
  }
  // SwaggerModule's private static serveStatic (it would register the same asset routes again).
  const original: unknown = Reflect.get(SwaggerModule, 'serveStatic');
  Reflect.set(SwaggerModule, 'serveStatic', () => undefined);
  try {
    SwaggerModule.setup(docsPath, app, document, { jsonDocumentUrl: `${docsPath}-json`, raw: ['json'] });
  } finally {
    Reflect.set(SwaggerModule, 'serveStatic', original);
  }
  return { ui: 'swagger-ui', assets: 'built-in' };
}
