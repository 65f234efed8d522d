/**
 * Opening the SQLite store: the file checked and migrated, the hot connection and the `@effect/sql` client
 * of the same file. `SqliteStore.layer` serves only the `EventStore` of it; the client stays with the store.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { type EventStore, StoreError } from "@ledgerflow/core"
import Database from "better-sqlite3"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import { storeError } from "./errors.js"
import { inspect, openConnection, prepareFile } from "./file.js"
import * as internalMigrations from "./migrations.js"
import * as internalStore from "./sqliteStore.js"
import * as WalSync from "./walSync.js"
import * as Writer from "./writer.js"

export interface Options {
  readonly filename: string
  readonly synchronous?: "full" | "normal" | undefined
  readonly busyTimeout?: Duration.DurationInput | undefined
}

/** The store and its own SQL client (migrations, tests); both close with the scope. */
export interface Opened {
  readonly store: EventStore.EventStoreService
  readonly sql: SqlClient.SqlClient
}

export const open = (
  options: Options
): Effect.Effect<
  Opened,
  StoreError.StoreError | StoreError.NotALedgerflowStore | StoreError.StoreTooNew,
  Scope.Scope
> =>
  Effect.gen(function*() {
    if (options.filename === "" || options.filename === ":memory:") {
      return yield* new StoreError.StoreError({
        operation: "open",
        message: `SqliteStore needs a file, not "${options.filename}"; use EventStore.layerMemory for a store in memory`
      })
    }
    const filename = path.resolve(options.filename)
    // SQLite takes whole milliseconds in a 32-bit int.
    const busyTimeoutMs = Math.min(
      Math.round(Duration.toMillis(Duration.decode(options.busyTimeout ?? "5 seconds"))),
      2 ** 31 - 1
    )
    const synchronous = options.synchronous === "normal" ? "NORMAL" : "FULL"
    const fail = (operation: string) => (cause: unknown) => storeError(operation, filename, cause, busyTimeoutMs)

    yield* prepareFile(filename)
    const db = yield* openConnection(filename, busyTimeoutMs)
    const contents = yield* inspect(db, filename, busyTimeoutMs)
    if (contents._tag === "Foreign") {
      return yield* new StoreError.NotALedgerflowStore({
        filename,
        message:
          `${filename} is not a ledgerflow store (${contents.reason}); use a new path or the right file`
      })
    }
    if (contents._tag === "Ledgerflow" && contents.schemaVersion > internalMigrations.schemaVersion) {
      return yield* new StoreError.StoreTooNew({
        filename,
        storeVersion: contents.schemaVersion,
        supportedVersion: internalMigrations.schemaVersion,
        message: `${filename} was written by a newer ledgerflow (schema ${contents.schemaVersion}, this version knows ${
          internalMigrations.schemaVersion
        }); upgrade ledgerflow`
      })
    }

    // The file is ours (or new): from here on we may write to it.
    yield* Effect.try({
      try: () => {
        db.pragma("journal_mode = WAL")
        // Commits on this connection reach the WAL without a flush; with "full", the store flushes the WAL
        // itself, off the event loop (internal/walSync.ts), before a durable write's caller resumes.
        db.pragma("synchronous = NORMAL")
        // No foreign-key checks on the hot connection: its writes insert events only under the UPDATE that
        // proved the run exists (and holds its token), so the check would be a second lookup per event.
        db.pragma("foreign_keys = OFF")
      },
      catch: fail("open")
    })

    const sql = yield* SqliteClient.make({ filename }).pipe(
      Effect.provide(Reactivity.layer),
      // The driver throws while opening; `make` turns that into a defect.
      Effect.catchSomeDefect((defect) =>
        defect instanceof Database.SqliteError ? Option.some(Effect.fail(fail("open")(defect))) : Option.none()
      )
    )
    yield* Effect.forEach(
      [`PRAGMA busy_timeout = ${busyTimeoutMs}`, `PRAGMA synchronous = ${synchronous}`, "PRAGMA foreign_keys = ON"],
      (pragma) => sql.unsafe(pragma),
      { discard: true }
    ).pipe(Effect.mapError(fail("open")))

    yield* internalMigrations.migrate.pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(fail("migration")),
      // The Migrator turns a failed migration into a defect carrying a MigrationError.
      Effect.catchSomeDefect((defect) =>
        defect instanceof Migrator.MigrationError ? Option.some(Effect.fail(fail("migration")(defect))) : Option.none()
      )
    )
    const migrated = yield* inspect(db, filename, busyTimeoutMs)
    if (migrated._tag !== "Ledgerflow" || migrated.schemaVersion !== internalMigrations.schemaVersion) {
      return yield* new StoreError.StoreError({
        operation: "migration",
        message: `the migrations of ${filename} did not complete (found ${
          migrated._tag === "Ledgerflow" ? `schema ${migrated.schemaVersion}` : "no ledgerflow schema"
        }, expected ${internalMigrations.schemaVersion}); another process may be migrating it: retry`
      })
    }

    const walSync = synchronous === "FULL" ? WalSync.make(filename) : undefined
    const writer = Writer.make(db, walSync)
    // Finalizers run in reverse: queued writes are committed, then flushed, before the connection closes.
    if (walSync !== undefined) {
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          try {
            walSync.close()
          } catch {
            // Every durable write was flushed before its caller resumed; what a failed last flush may lose
            // (a claim, a completion) is rebuilt from the log.
          }
        })
      )
    }
    yield* Effect.addFinalizer(() => Effect.sync(writer.flush))
    return { store: internalStore.make({ db, writer, filename, busyTimeoutMs }), sql }
  })
