/** Throw-away PostgreSQL schemas for the event-store tests (real server, never mocked). */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function freshSchemaName(tag: string): string {
  return `es_${tag}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}
