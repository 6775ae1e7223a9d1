/**
 * One store for several built service processes (`startApp`): PostgreSQL (a fresh schema) or
 * SQLite (one DATA_DIR on this host: every process after the first opens the first one's files).
 * `start` starts one more process on it; `remove`, once they have stopped, deletes their data
 * directories and drops the schema.
 */
import * as fs from 'node:fs';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { type RunningApp, startApp } from './app-process';

export type SharedStoreKind = 'postgres' | 'sqlite';

export function sharedStore(kind: SharedStoreKind, tag: string, env: Record<string, string> = {}) {
  const schema = freshSchemaName(tag);
  const storeEnv: Record<string, string> = kind === 'postgres' ? { EVENT_STORE: 'postgres', DATABASE_URL: PG_URL, PG_SCHEMA: schema } : { EVENT_STORE: 'sqlite' };
  const dataDirs: string[] = [];
  return {
    async start(more: Record<string, string> = {}): Promise<RunningApp> {
      const app = await startApp({ ...env, ...storeEnv, ...more }, kind === 'sqlite' ? dataDirs[0] : undefined);
      if (!dataDirs.includes(app.dataDir)) dataDirs.push(app.dataDir);
      return app;
    },
    async remove(): Promise<void> {
      for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
      if (kind === 'postgres') await dropSchema(schema);
    },
  };
}
