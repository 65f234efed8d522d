/**
 * The SQLite `EventStore`: the embedded default. One file (default `.ledgerflow/ledger.db`), WAL,
 * `synchronous=FULL` unless told otherwise; migrations run before the store serves, and a file that is not
 * a ledgerflow store, or was written by a newer one, is refused untouched.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { StoreError } from "@ledgerflow/core"
import { EventStore } from "@ledgerflow/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internalMigrations from "./internal/migrations.js"
import * as internalOpen from "./internal/open.js"

/** Where the CLI and the examples keep the store unless told otherwise. */
export const defaultFilename = ".ledgerflow/ledger.db"

export interface Options {
  /** The store file; its directory is created (0700) and the file (0600) when absent. */
  readonly filename: string
  /**
   * `"full"` (the default) syncs the log on every commit: a committed step survives a power loss.
   * `"normal"` is faster and still safe against a crashed process, but a power loss may drop the last commits.
   */
  readonly synchronous?: "full" | "normal" | undefined
  /** How long a write waits for another process holding the file before failing (default 5 seconds). */
  readonly busyTimeout?: Duration.DurationInput | undefined
}

/** The schema as data: `NNNN_name` → the migration. Run in order by `layer`, never edited once released. */
export const migrations: Readonly<Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>> =
  internalMigrations.migrations

/** The newest schema version this code knows. */
export const schemaVersion: number = internalMigrations.schemaVersion

/**
 * Opens (or creates) the store, runs its migrations, and serves the engine's `EventStore`. Its own
 * `SqlClient` (migrations, listing) stays inside: a step's SQL must never land in the ledger file by
 * accident, so the layer does not provide one — give your steps their own database's client. Both
 * connections close with the layer's scope.
 */
export const layer = (
  options: Options
): Layer.Layer<
  EventStore.EventStore,
  StoreError.StoreError | StoreError.NotALedgerflowStore | StoreError.StoreTooNew
> => Layer.scoped(EventStore.EventStore, Effect.map(internalOpen.open(options), (opened) => opened.store))

