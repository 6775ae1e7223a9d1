/** In-process apps for the production-readiness tests: several apps in one process, each on its own SQLite file. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { EventStore } from '@metering/event-store';
import type { AppOverrides } from '../../apps/metering/src/app.module';
import { openStorage } from '../../apps/metering/src/infra/storage';
import { type AppConfig, loadConfig } from '../../apps/metering/src/config';
import { createHttpApp } from '../../apps/metering/src/http/bootstrap';
import type { BalanceReadModel } from '../../apps/metering/src/projection/balance-read-model';

export interface TestApp {
  app: NestFastifyApplication;
  url: string;
  config: AppConfig;
  storage: { store: EventStore; readModel: BalanceReadModel };
  dir: string;
  close(): Promise<void>;
}

/** Builds an app in this process (not listening: requests go through app.inject). */
export async function inProcessApp(
  env: Record<string, string> = {},
  wrapStore: (s: EventStore) => EventStore = (s) => s,
  overrides: AppOverrides = {},
): Promise<TestApp> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-prod-'));
  const base: NodeJS.ProcessEnv = { DATA_DIR: dir, LOG_LEVEL: 'silent', SCHEDULER_INTERVAL_MS: '60000' };
  const config = loadConfig({ ...base, ...env }, dir);
  const opened = await openStorage(config);
  const storage = { store: wrapStore(opened.store), readModel: opened.readModel };
  const app = await createHttpApp(config, storage, overrides);
  // Listening on a free loopback port (light-my-request's inject cannot load under this jest setup).
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    app,
    url,
    config,
    storage,
    dir,
    async close() {
      await app.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function call(
  t: { url: string },
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Record<string, string>; text: string }> {
  const r = await fetch(`${t.url}${url}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.status, body: parsed, headers: Object.fromEntries(r.headers.entries()), text };
}
