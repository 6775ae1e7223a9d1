import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule, openStorage } from './app.module';
import { ConfigError, loadConfig } from './config';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`metering: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const storage = await openStorage(config);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, storage), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  app.useBodyParser('json', { limit: '5mb' });
  await app.listen(config.port, config.host);
  const url = await app.getUrl();
  app.get(Logger).log(`metering listening on ${url} (store: ${config.eventStore}${config.eventStore === 'sqlite' ? ` at ${config.sqliteFile}` : ''})`);
}

main().catch((err) => {
  process.stderr.write(`metering: failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
