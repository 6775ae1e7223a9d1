/**
 * Reads of the store under test made directly, never through the service (see torture.ts).
 */
import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { Client } from 'pg';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the store directly (never through the service under test). */
export interface StoreProbe {
  countByType(): Promise<Record<string, number>>;
  countByStreamAndType(): Promise<Map<string, Record<string, number>>>;
  idsOfType(types: string[]): Promise<Set<string>>;
  close(): Promise<void>;
}

export function sqliteProbe(file: string): StoreProbe {
  const q = <T>(sql: string): T[] => {
    if (!fs.existsSync(file)) return [];
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  };
  return {
    async countByType() {
      const out: Record<string, number> = {};
      for (const r of q<{ type: string; n: number }>('SELECT type, count(*) AS n FROM events GROUP BY type')) out[r.type] = r.n;
      return out;
    },
    async countByStreamAndType() {
      const out = new Map<string, Record<string, number>>();
      for (const r of q<{ s: string; type: string; n: number }>('SELECT stream_name AS s, type, count(*) AS n FROM events GROUP BY stream_name, type')) {
        if (!out.has(r.s)) out.set(r.s, {});
        out.get(r.s)![r.type] = r.n;
      }
      return out;
    },
    async idsOfType(types) {
      return new Set(q<{ id: string }>(`SELECT event_id AS id FROM events WHERE type IN (${types.map((t) => `'${t}'`).join(',')})`).map((r) => r.id));
    },
    async close() {},
  };
}

export function pgProbe(url: string, schema: string): StoreProbe {
  let client: Client | null = null;
  const q = async <T>(sql: string): Promise<T[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!client) {
          client = new Client({ connectionString: url });
          client.on('error', () => undefined);
          await client.connect();
        }
        const exists = await client.query(`SELECT to_regclass('"${schema}".events') AS t`);
        if (!exists.rows[0].t) return [];
        return (await client.query(sql)).rows as T[];
      } catch (err) {
        await client?.end().catch(() => undefined);
        client = null;
        if (attempt >= 5) throw err;
        await sleep(500);
      }
    }
  };
  return {
    async countByType() {
      const out: Record<string, number> = {};
      for (const r of await q<{ type: string; n: string }>(`SELECT type, count(*) AS n FROM "${schema}".events GROUP BY type`)) out[r.type] = Number(r.n);
      return out;
    },
    async countByStreamAndType() {
      const out = new Map<string, Record<string, number>>();
      for (const r of await q<{ s: string; type: string; n: string }>(`SELECT stream_name AS s, type, count(*) AS n FROM "${schema}".events GROUP BY stream_name, type`)) {
        if (!out.has(r.s)) out.set(r.s, {});
        out.get(r.s)![r.type] = Number(r.n);
      }
      return out;
    },
    async idsOfType(types) {
      return new Set((await q<{ id: string }>(`SELECT event_id::text AS id FROM "${schema}".events WHERE type IN (${types.map((t) => `'${t}'`).join(',')})`)).map((r) => r.id));
    },
    async close() {
      await client?.end().catch(() => undefined);
    },
  };
}
