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
];
