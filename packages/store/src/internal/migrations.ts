/**
 * The SQLite schema as data: migrations keyed `NNNN_name`, run by `@effect/sql`'s Migrator before the store
 * serves. Each migration records its number as `schema_version` in `ledgerflow_meta`, the table whose
 * `format` row marks a file as a ledgerflow store.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table the Migrator records applied migrations in. */
export const migrationsTable = "ledgerflow_migrations"

/** The marker table: `format = ledgerflow`, `schema_version = N`. */
export const metaTable = "ledgerflow_meta"

export type Migration = Effect.Effect<void, SqlError, SqlClient.SqlClient>

/** Created before the migrations run, so that they can begin by taking the write lock on it. */
const createMetaTable = `CREATE TABLE IF NOT EXISTS ${metaTable} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`

/**
 * The first statement of the migrations' transaction: a write, so the transaction holds SQLite's write lock
 * (waiting for it like `BEGIN IMMEDIATE`) before it reads which migrations were applied. Two processes
 * opening a new store then migrate it one after the other.
 */
const takeWriteLock = `DELETE FROM ${metaTable} WHERE 0`

const statements = (...sql: ReadonlyArray<string>): Migration =>
  Effect.flatMap(SqlClient.SqlClient, (client) => Effect.forEach(sql, (s) => client.unsafe(s), { discard: true }))

const setSchemaVersion = (version: number) =>
  `INSERT INTO ${metaTable} (key, value) VALUES ('schema_version', '${version}')
   ON CONFLICT (key) DO UPDATE SET value = excluded.value`

export const migrations: Readonly<Record<string, Migration>> = {
  "0001_create_runs_and_events": statements(
    createMetaTable,
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
    // Listings are ordered by (created_at, run_id): each index ends with both, so a LIMIT stops early
    // instead of sorting every matching row (the engine lists a pipeline's latest runs at every start).
    `CREATE INDEX runs_by_created ON runs (created_at, run_id)`,
    `CREATE INDEX runs_by_status ON runs (status, created_at, run_id)`,
    `CREATE INDEX runs_by_pipeline ON runs (pipeline, created_at, run_id)`,
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
    // Small durable settings of the engine (e.g. when a pipeline's storm breaker was last reset).
    `CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`,
    // Durable counters (the loop guard's, per conversation thread): `actors` is a JSON array, newest last.
    `CREATE TABLE counters (
      key TEXT PRIMARY KEY NOT NULL,
      count INTEGER NOT NULL,
      actors TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
    setSchemaVersion(1)
  ),
  // The hot path's append writes one b-tree instead of three. Events are clustered by (run_id, seq): a
  // step's insert touches one page, and a run's log is read as one range. The run's last seq is no longer
  // kept in its row (one more page rewritten per step): it is the events' max(seq), found in that range.
  // Rebuilt the way SQLite documents for schema changes: new table, copy, drop, rename.
  "0002_events_clustered_by_run": statements(
    `CREATE TABLE events_by_run (
      run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      type TEXT NOT NULL,
      v INTEGER NOT NULL,
      at INTEGER NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID`,
    `INSERT INTO events_by_run (run_id, seq, type, v, at, data) SELECT run_id, seq, type, v, at, data FROM events`,
    `DROP TABLE events`,
    `ALTER TABLE events_by_run RENAME TO events`,
    `ALTER TABLE runs DROP COLUMN last_seq`,
    setSchemaVersion(2)
  ),
  // A resume or replay folds a run's whole log; JSON.parse of every body alone capped it below 200k events/s.
  // A step completion without usage (nearly every event of a log) keeps what the fold reads of it in
  // columns, written by the append; its body is parsed only when the step is served. Other events leave
  // them null, and so does any row whose body does not plainly hold them: the fold decodes those bodies.
  // Adding a nullable column does not rewrite the table; the back-fill rewrites each completion's row once.
  "0003_events_step_columns": statements(
    `ALTER TABLE events ADD COLUMN step_id TEXT`,
    `ALTER TABLE events ADD COLUMN step_name TEXT`,
    `ALTER TABLE events ADD COLUMN input_hash TEXT`,
    `ALTER TABLE events ADD COLUMN attempt INTEGER`,
    `ALTER TABLE events ADD COLUMN started_at INTEGER`,
    // Only where the columns will equal what the body decodes to: a JSON object without usage, fields of
    // the right JSON types, the body's time the row's, no escaped lone surrogate (which a text column would
    // not keep). The rest stay null and are folded from their bodies, as before. A damaged body is left as
    // it is, to be reported when read: the CASE keeps the JSON functions (which fail on it) off it.
    `UPDATE events SET
       step_id = data ->> '$.stepId',
       step_name = data ->> '$.name',
       input_hash = data ->> '$.inputHash',
       attempt = data ->> '$.attempt',
       started_at = data ->> '$.startedAt'
     WHERE type = 'StepCompleted' AND v = 1 AND CASE WHEN json_valid(data) THEN
       json_type(data) = 'object' AND json_type(data, '$.usage') IS NULL
       AND json_type(data, '$.stepId') = 'text' AND json_type(data, '$.name') = 'text'
       AND json_type(data, '$.inputHash') = 'text'
       AND json_type(data, '$.attempt') = 'integer' AND json_type(data, '$.startedAt') = 'integer'
       AND json_type(data, '$.at') = 'integer' AND data ->> '$.at' = at
       AND data NOT LIKE '%\\ud%'
     ELSE 0 END`,
    setSchemaVersion(3)
  ),
  // Every start by key is a delivery, counted on the run: "21 deliveries, 1 execution". The claim that
  // creates a run is its first (the column's default), so existing runs are back-filled as delivered once,
  // at their creation. A redelivery then costs one small update of the run's row.
  "0004_runs_deliveries": statements(
    `ALTER TABLE runs ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 1`,
    `ALTER TABLE runs ADD COLUMN last_delivered_at INTEGER`,
    `UPDATE runs SET last_delivered_at = created_at`,
    setSchemaVersion(4)
  )
}

/** The newest schema this code knows: a store with a higher `schema_version` is refused. */
export const schemaVersion: number = Math.max(...Object.keys(migrations).map((name) => Number.parseInt(name, 10)))

/**
 * Applies the migrations the store lacks, all in one transaction. `@effect/sql`'s Migrator begins its own
 * (deferred) transaction, which here becomes a savepoint inside ours, opened with the write lock held.
 */
export const migrate: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(createMetaTable)
  return yield* sql.withTransaction(
    Effect.zipRight(
      sql.unsafe(takeWriteLock),
      Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })
    )
  )
})
