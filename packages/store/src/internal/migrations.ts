/**
 * The SQLite schema as data: migrations keyed `NNNN_name`, run by `@effect/sql`'s Migrator before the store
 * serves. Each migration records its number as `schema_version` in `ledgerflow_meta`, the table whose
 * `format` row marks a file as a ledgerflow store.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table the Migrator records applied migrations in. */
export const migrationsTable = "ledgerflow_migrations"

/** The marker table: `format = ledgerflow`, `schema_version = N`. */
export const metaTable = "ledgerflow_meta"

export type Migration = Effect.Effect<void, SqlError, SqlClient.SqlClient>

const statements = (...sql: ReadonlyArray<string>): Migration =>
  Effect.flatMap(SqlClient.SqlClient, (client) => Effect.forEach(sql, (s) => client.unsafe(s), { discard: true }))

const setSchemaVersion = (version: number) =>
  `INSERT INTO ${metaTable} (key, value) VALUES ('schema_version', '${version}')
   ON CONFLICT (key) DO UPDATE SET value = excluded.value`

export const migrations: Readonly<Record<string, Migration>> = {
  "0001_create_runs_and_events": statements(
    `CREATE TABLE ${metaTable} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`,
    `INSERT INTO ${metaTable} (key, value) VALUES ('format', 'ledgerflow')`,
    `CREATE TABLE runs (
      run_id TEXT PRIMARY KEY NOT NULL,
      pipeline TEXT NOT NULL,
      version TEXT NOT NULL,
      key TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN
        ('running', 'completed', 'failed', 'compensating', 'rolled_back', 'needs_attention', 'cancelled')),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      last_seq INTEGER NOT NULL,
      owner TEXT NOT NULL,
      lease_token INTEGER NOT NULL,
      lease_expires_at INTEGER NOT NULL,
      failure_class TEXT,
      failure_fingerprint TEXT,
      failure_reason TEXT,
      parent_run_id TEXT,
      correlation_id TEXT,
      UNIQUE (pipeline, key)
    )`,
    // Listing is newest-created first, optionally by status or pipeline, or since an update time.
    `CREATE INDEX runs_by_created ON runs (created_at, run_id)`,
    `CREATE INDEX runs_by_status ON runs (status, created_at)`,
    `CREATE INDEX runs_by_pipeline ON runs (pipeline, created_at)`,
    `CREATE INDEX runs_by_updated ON runs (updated_at)`,
    `CREATE TABLE events (
      run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      type TEXT NOT NULL,
      v INTEGER NOT NULL,
      at INTEGER NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (run_id, seq)
    )`,
    setSchemaVersion(1)
  )
}

/** The newest schema this code knows: a store with a higher `schema_version` is refused. */
export const schemaVersion: number = Math.max(...Object.keys(migrations).map((name) => Number.parseInt(name, 10)))
