/**
 * The Postgres `EventStore`: for many workers on many machines sharing one ledger. The same port and the
 * same conformance suite as the SQLite store; claims are `INSERT … ON CONFLICT`, fencing tokens are checked
 * inside the append's statement, the run projection is updated by that same statement, concurrent runs'
 * appends share a transaction (group commit), and a takeover of a dead run skips rows another worker is
 * taking (`FOR UPDATE SKIP LOCKED`); a starter waiting on a run another worker holds is woken by the
 * `pg_notify` its status change sends (LISTEN/NOTIFY). The store's tables live in their own Postgres schema
 * (`ledgerflow` by default), so it can share a database with the application's own tables.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { EventStore, StoreError } from "@ledgerflow/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import pg from "pg"
import { redactUrl, storeError } from "./internal/pgErrors.js"
import * as Listener from "./internal/pgListener.js"
import * as internalMigrations from "./internal/pgMigrations.js"
import * as internalStore from "./internal/pgStore.js"
import * as Writer from "./internal/pgWriter.js"

export interface Options {
  /** `postgres://user:password@host:port/database`; shown in messages without its password. */
  readonly url: string | Redacted.Redacted<string>
  /** The Postgres schema holding the store's tables, created when absent (default `ledgerflow`). */
  readonly schema?: string | undefined
  /**
   * Connections the store may open (default 10): one commits the writer's batches, the others read. A
   * store that waits for another worker's run opens one more, its own, to LISTEN.
   */
  readonly maxConnections?: number | undefined
  /**
   * Create the store when the schema holds none (default true). False only opens an existing store: a
   * reader (the CLI) must not leave an empty store behind a mistyped URL.
   */
  readonly create?: boolean | undefined
  /** How long to wait for a connection before failing (default 10 seconds). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** The schema as data: `NNNN_name` → its statements (`{schema}` is the store's Postgres schema). */
export const migrations: Readonly<Record<string, ReadonlyArray<string>>> = internalMigrations.migrations

/** The newest schema version this code knows. */
export const schemaVersion: number = internalMigrations.schemaVersion

/** Whether `url` names a Postgres server (rather than a SQLite file). */
export const isUrl = (url: string): boolean => /^postgres(ql)?:\/\//i.test(url)

/**
 * Connects, runs the migrations, and serves `EventStore` (only: a step's own SQL never reaches the
 * ledger's connections). The connections close with the layer's scope, after queued writes commit.
 */
export const layer = (
  options: Options
): Layer.Layer<EventStore.EventStore, StoreError.StoreError | StoreError.NotALedgerflowStore | StoreError.StoreTooNew> =>
  Layer.scoped(EventStore.EventStore, make(options))

/**
 * `layer` with its options read from configuration, e.g.
 * `PgStore.layerConfig({ url: Config.redacted("DATABASE_URL") })`.
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  EventStore.EventStore,
  ConfigError.ConfigError | StoreError.StoreError | StoreError.NotALedgerflowStore | StoreError.StoreTooNew
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/** Postgres `bigint` (epoch milliseconds, counts) as a JS number: every value the store writes is one. */
const parseBigint = (value: string): number => Number(value)

const types: pg.CustomTypesConfig = {
  getTypeParser: (oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8 && format !== "binary" ? parseBigint : pg.types.getTypeParser(oid, format ?? "text")
}

const make = (
  options: Options
): Effect.Effect<
  EventStore.EventStoreService,
  StoreError.StoreError | StoreError.NotALedgerflowStore | StoreError.StoreTooNew,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const url = typeof options.url === "string" ? options.url : Redacted.value(options.url)
    const where = redactUrl(url)
    const schema = options.schema ?? "ledgerflow"
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      return yield* new StoreError.StoreError({
        operation: "open",
        message: `"${schema}" is not a usable Postgres schema name for the ledgerflow store; ` +
          `use lower-case letters, digits and underscores`
      })
    }
    const fail = (operation: string) => (cause: unknown) => storeError(operation, where, cause)
    const connectionTimeoutMillis = Math.round(Duration.toMillis(Duration.decode(options.connectTimeout ?? "10 seconds")))

    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({
          connectionString: url,
          max: options.maxConnections ?? 10,
          connectionTimeoutMillis,
          application_name: "ledgerflow",
          types
        })
        // An idle connection the server closed is dropped by the pool; without a listener Node would crash.
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) => Effect.promise(() => pool.end().catch(() => undefined))
    )
    const sql = yield* PgClient.fromPool({ acquire: Effect.succeed(pool) }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError(fail("open"))
    )
    yield* sql.unsafe("SELECT 1").pipe(Effect.mapError(fail("connection")))

    yield* sql.withTransaction(
      internalMigrations.migrate(schema, (found): Effect.Effect<void, StoreError.NotALedgerflowStore | StoreError.StoreTooNew> => {
        if (found._tag === "Foreign") {
          return Effect.fail(new StoreError.NotALedgerflowStore({
            filename: `${where} (schema ${schema})`,
            message: `the schema ${schema} of ${where} holds tables that are not a ledgerflow store (${
              found.tables.slice(0, 5).join(", ")
            }); use another schema for the store`
          }))
        }
        if (found._tag === "Empty" && options.create === false) {
          return Effect.fail(new StoreError.NotALedgerflowStore({
            filename: `${where} (schema ${schema})`,
            message: `no ledgerflow store in the schema ${schema} of ${where}; run a pipeline on it first, or check the URL`
          }))
        }
        if (found._tag === "Ledgerflow" && found.schemaVersion > schemaVersion) {
          return Effect.fail(new StoreError.StoreTooNew({
            filename: `${where} (schema ${schema})`,
            storeVersion: found.schemaVersion,
            supportedVersion: schemaVersion,
            message: `the ledgerflow store ${where} (schema ${schema}) was written by a newer ledgerflow (schema ${
              found.schemaVersion
            }, this version knows ${schemaVersion}); upgrade ledgerflow`
          }))
        }
        return Effect.void
      })
    ).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.catchTag("SqlError", (error) => Effect.fail(fail("migration")(error)))
    )

    const writer = Writer.make(pool)
    // Runs before the pool ends (finalizers run in reverse): queued writes commit first.
    yield* Effect.addFinalizer(() => Effect.promise(writer.drained))
    const waiters = EventStore.makeRunWaiters()
    const listener = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Listener.make({
          schema,
          connect: () =>
            new pg.Client({
              connectionString: url,
              connectionTimeoutMillis,
              application_name: "ledgerflow-listen",
              // A server gone without a word is noticed, and its waiters woken, instead of listening to nothing.
              keepAlive: true
            }),
          onChange: waiters.wake,
          onLost: waiters.wakeAll
        })
      ),
      (listener) => Effect.promise(listener.close)
    )
    return internalStore.make({ listener, schema, sql, waiters, where, writer })
  })
