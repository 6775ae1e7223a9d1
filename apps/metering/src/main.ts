import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { openStorage } from './infra/storage';
import { ConfigError, loadConfig } from './config';
import { createHttpApp } from './http/bootstrap';

async function main(): Promise<void> {
  // Files the service creates (the SQLite database, its WAL) are readable by the owner only.
  process.umask(0o077);
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
  const app = await createHttpApp(config, storage);
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
  const url = await app.getUrl();
  const logger = app.get(Logger);
  logger.log(
    `metering listening on ${url} (store: ${config.eventStore}${config.eventStore === 'sqlite' ? ` at ${config.sqliteFile}` : ''}; roles: ${[...config.roles].join(',')})`,
  );
  if (config.apiKeys.length === 0 && config.roles.has('api'))
    logger.warn(
      `the API is OPEN: API_KEYS is not set, so every /v1 route answers without a key. This is allowed only because HOST=${config.host} is a loopback address. ` +
        'Only requests with a loopback Host (localhost, 127.0.0.1, [::1]) are served, and writes from a web page of another origin are refused, ' +
        'but any local process can read and write. Set API_KEYS (e.g. API_KEYS=read+ingest=<key>,admin=<key>) before exposing it',
    );
  else if (config.roles.has('api')) logger.log(`API keys: ${config.apiKeys.length} configured; /v1 needs a key with the route's scope`);
}

main().catch((err) => {
  process.stderr.write(`metering: failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
