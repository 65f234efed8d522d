/**
 * The Postgres schema as data: migrations keyed `NNNN_name`, each a list of statements over the store's
 * own Postgres schema (`{schema}` in the text), never edited once released. They run in one transaction
 * under an advisory lock, so workers starting together migrate one after the other, and a schema written
 * by a newer ledgerflow is refused before anything is touched.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The marker table: `format = ledgerflow`, `schema_version = N`. */
export const metaTable = "ledgerflow_meta"

export const migrations: Readonly<Record<string, ReadonlyArray<string>>> = {
  "0001_create_runs_and_events": [
    `CREATE TABLE {schema}.runs (
      -- Byte order ("C"): a run id prefix (typed by a person) is a range of the primary key.
      run_id TEXT COLLATE "C" PRIMARY KEY,
      pipeline TEXT NOT NULL,
      version TEXT NOT NULL,
      key TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN
        ('running', 'completed', 'failed', 'compensating', 'rolled_back', 'needs_attention', 'cancelled')),
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      -- Kept in the row (unlike SQLite): every append updates the row anyway, to check its fencing token
      -- and take the row's lock, and the new seqs come out of that same statement.
      last_seq INTEGER NOT NULL,
      owner TEXT NOT NULL,
      lease_token INTEGER NOT NULL,
      lease_expires_at BIGINT NOT NULL,
      failure_class TEXT,
      failure_fingerprint TEXT,
      failure_reason TEXT,
      parent_run_id TEXT,
      correlation_id TEXT,
      -- Every start by key is a delivery, counted on the run: "21 deliveries, 1 execution".
      deliveries INTEGER NOT NULL DEFAULT 1,
      last_delivered_at BIGINT NOT NULL,
      UNIQUE (pipeline, key)
    )`,
    // Listings are newest-created first, by status or pipeline or since an update time.
    `CREATE INDEX runs_by_created ON {schema}.runs (created_at, run_id)`,
    `CREATE INDEX runs_by_status ON {schema}.runs (status, created_at, run_id)`,
    `CREATE INDEX runs_by_pipeline ON {schema}.runs (pipeline, created_at, run_id)`,
    `CREATE INDEX runs_by_updated ON {schema}.runs (updated_at)`,
    // No foreign key to runs: events are only inserted by the statement that updated their run's row (and
    // checked its token), so the check would be a second lookup per event.
    `CREATE TABLE {schema}.events (
      run_id TEXT COLLATE "C" NOT NULL,
      seq INTEGER NOT NULL,
      type TEXT NOT NULL,
      v INTEGER NOT NULL,
      at BIGINT NOT NULL,
      data TEXT NOT NULL,
      step_id TEXT,
      step_name TEXT,
      input_hash TEXT,
      attempt BIGINT,
      started_at BIGINT,
      PRIMARY KEY (run_id, seq)
    )`,
    `CREATE TABLE {schema}.settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    // Durable counters (the loop guard's, per conversation thread): `actors` newest last.
    `CREATE TABLE {schema}.counters (
      key TEXT PRIMARY KEY,
      count BIGINT NOT NULL,
      actors JSONB NOT NULL,
      updated_at BIGINT NOT NULL
    )`
  ]
}

/** The newest schema this code knows: a store with a higher `schema_version` is refused. */
export const schemaVersion: number = Math.max(...Object.keys(migrations).map((name) => Number.parseInt(name, 10)))

/** Where the store stands before migrating. */
export type Found =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Ledgerflow"; readonly schemaVersion: number }
  | { readonly _tag: "Foreign"; readonly tables: ReadonlyArray<string> }

/** What the Postgres schema `schema` holds (read in the migrations' transaction, under their lock). */
export const inspect = (schema: string): Effect.Effect<Found, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = (yield* sql.unsafe<{ readonly name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1",
      [schema]
    )).map((row) => row.name)
    if (tables.length === 0) return { _tag: "Empty" } as const
    if (!tables.includes(metaTable)) return { _tag: "Foreign", tables } as const
    const meta = yield* sql.unsafe<{ readonly key: string; readonly value: string }>(
      `SELECT key, value FROM ${schema}.${metaTable}`
    )
    const format = meta.find((row) => row.key === "format")?.value
    const version = Number(meta.find((row) => row.key === "schema_version")?.value ?? "0")
    return format === "ledgerflow" && Number.isInteger(version)
      ? { _tag: "Ledgerflow", schemaVersion: version } as const
      : { _tag: "Foreign", tables } as const
  })

/**
 * Take the migrations' lock (a transaction-scoped advisory lock keyed by the schema's name), then
 * `decide` on what the schema holds; when it says go, apply the migrations the store lacks. All in the
 * caller's transaction.
 */
export const migrate = <E>(
  schema: string,
  decide: (found: Found) => Effect.Effect<void, E>
): Effect.Effect<void, E | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe("SELECT pg_advisory_xact_lock(hashtext($1))", [`ledgerflow-migrate:${schema}`])
    const found = yield* inspect(schema)
    yield* decide(found)
    const current = found._tag === "Ledgerflow" ? found.schemaVersion : 0
    if (found._tag === "Empty") {
      yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
      yield* sql.unsafe(`CREATE TABLE ${schema}.${metaTable} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
      yield* sql.unsafe(`INSERT INTO ${schema}.${metaTable} (key, value) VALUES ('format', 'ledgerflow')`)
    }
    for (const [name, statements] of Object.entries(migrations).sort(([a], [b]) => a.localeCompare(b))) {
      const version = Number.parseInt(name, 10)
      if (version <= current) continue
      for (const statement of statements) yield* sql.unsafe(statement.replaceAll("{schema}", schema))
      yield* sql.unsafe(
        `INSERT INTO ${schema}.${metaTable} (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(version)]
      )
    }
  })
