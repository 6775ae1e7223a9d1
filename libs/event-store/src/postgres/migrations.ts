import type { ClientBase } from 'pg';

/**
 * Schema migrations of the PostgreSQL event store, applied in order by `PostgresEventStore.migrate()`
 * and recorded in `<schema>.schema_migrations`. Never edit an applied migration: add a new one.
 * `s` is the already-quoted schema identifier.
 */
export interface Migration {
  version: number;
  name: string;
  sql: (s: string) => string;
}

/**
 * Applies the migrations not yet recorded in `<schema>.<table>`, in version order, inside the
 * caller's open transaction. An advisory lock on `lockKey` (released at COMMIT/ROLLBACK)
 * serialises concurrent migrators, so several instances may start at once.
 */
export async function applyMigrations(
  client: ClientBase,
  options: { quotedSchema: string; table: string; lockKey: string; migrations: readonly Migration[] },
): Promise<void> {
  const { quotedSchema: q, table, lockKey, migrations } = options;
  await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [lockKey]);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${q}.${table} (
       version    INTEGER     PRIMARY KEY,
       name       TEXT        NOT NULL,
       applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
     )`,
  );
  const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${q}.${table}`);
  const applied = new Set(rows.map((r) => r.version));
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    await client.query(m.sql(q));
    await client.query(`INSERT INTO ${q}.${table} (version, name) VALUES ($1, $2)`, [m.version, m.name]);
  }
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events and global position counter',
    sql: (s) => `
      CREATE TABLE ${s}.events (
        global_position BIGINT      NOT NULL,
        stream_name     TEXT        NOT NULL,
        revision        BIGINT      NOT NULL CHECK (revision >= 0),
        event_id        UUID        NOT NULL,
        type            TEXT        NOT NULL,
        -- json, not jsonb: stored verbatim (key order, number text, \\u0000 all survive).
        data            JSON        NOT NULL,
        metadata        JSON        NOT NULL,
        recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT events_pkey PRIMARY KEY (global_position),
        CONSTRAINT events_stream_revision_key UNIQUE (stream_name, revision),
        CONSTRAINT events_event_id_key UNIQUE (event_id)
      );

      -- One row. Appends take their positions from it inside their own transaction, so the row
      -- lock orders commits by position (see postgres-event-store.ts, "visibility gap").
      CREATE TABLE ${s}.global_position (
        id    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        value BIGINT  NOT NULL CHECK (value >= 0)
      ) WITH (fillfactor = 20);
      INSERT INTO ${s}.global_position (id, value) VALUES (TRUE, 0);
    `,
  },
  {
    version: 2,
    name: 'snapshots: the latest folded state per stream (a cache)',
    sql: (s) => `
      CREATE TABLE ${s}.snapshots (
        stream_name TEXT        PRIMARY KEY,
        revision    BIGINT      NOT NULL CHECK (revision >= 0),
        schema      INTEGER     NOT NULL,
        data        TEXT        NOT NULL,
        written_at  TIMESTAMPTZ NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: 'store identity: saved next to every checkpoint (positions mean nothing in another store)',
    sql: (s) => `
      CREATE TABLE ${s}.store_identity (
        id       BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        store_id TEXT    NOT NULL
      );
      INSERT INTO ${s}.store_identity (id, store_id) VALUES (TRUE, 'postgres:' || md5(random()::text || clock_timestamp()::text));
    `,
  },
];
