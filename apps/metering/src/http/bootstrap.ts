/**
 * Builds the HTTP application on Fastify: the body limit (MAX_BODY_BYTES, 413 beyond), the API's
 * error shape for the platform's own errors, pino as the logger, OpenAPI at /docs. Used by main.ts
 * and by tests that run several apps in one process.
 */
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import type { EventStore } from '@metering/event-store';
import { AppModule, type AppOverrides } from '../app.module';
import type { AppConfig } from '../config';
import type { BalanceReadModel } from '../projection/balance-read-model';
import { HttpErrorsFilter } from './http-errors.filter';
import { setupOpenApi } from './openapi';

export async function createHttpApp(
  config: AppConfig,
  storage: { store: EventStore; readModel: BalanceReadModel },
  overrides: AppOverrides = {},
  options: { bufferLogs?: boolean } = {},
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.maxBodyBytes,
    trustProxy: false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, storage, overrides), adapter, {
    bufferLogs: options.bufferLogs ?? true,
  });
  app.useLogger(app.get(Logger));
  app.useGlobalFilters(new HttpErrorsFilter(adapter, config.maxBodyBytes));
  setupOpenApi(app);
  return app;
}
