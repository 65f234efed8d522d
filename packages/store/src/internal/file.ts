/**
 * Opening a store file safely: the directory (0700) and the file (0600) are created before SQLite sees
 * them, unwritable places are named, and a file that is not ours is refused before anything is written.
 */
import { StoreError } from "@ledgerflow/core"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import { storeError } from "./errors.js"
import { metaTable, migrationsTable } from "./migrations.js"

const codeOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : ""

const cannotUse = (filename: string, reason: string, cause?: unknown) =>
  new StoreError.StoreError({
    operation: "open",
    message: `cannot use ${filename} as the ledgerflow store: ${reason}`,
    cause
  })

const notWritable = (filename: string, place: string, cause: unknown) =>
  cannotUse(
    filename,
    `${place} is not writable (${
      codeOf(cause) || String(cause)
    }); fix its permissions, or use a path in a writable directory`,
    cause
  )

/** Create the directory (0700) and an empty file (0600) when absent; check both are writable. */
export const prepareFile = (filename: string): Effect.Effect<void, StoreError.StoreError> =>
  Effect.suspend(() => {
    const directory = path.dirname(filename)
    try {
      fs.mkdirSync(directory, { recursive: true, mode: 0o700 })
    } catch (cause) {
      let existing = directory
      while (!fs.existsSync(existing) && existing !== path.dirname(existing)) existing = path.dirname(existing)
      return Effect.fail(
        fs.existsSync(existing) && !fs.statSync(existing).isDirectory()
          ? cannotUse(filename, `${existing} is a file, not a directory; use another path`, cause)
          : notWritable(filename, `the directory ${existing}, where ${directory} would be created,`, cause)
      )
    }
    // SQLite creates `-wal` and `-shm` files beside the store: the directory itself must be writable.
    try {
      fs.accessSync(directory, fs.constants.W_OK | fs.constants.X_OK)
    } catch (cause) {
      return Effect.fail(notWritable(filename, `the directory ${directory}`, cause))
    }
    try {
      fs.closeSync(fs.openSync(filename, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600))
    } catch (cause) {
      if (codeOf(cause) !== "EEXIST") return Effect.fail(notWritable(filename, `the directory ${directory}`, cause))
    }
    if (!fs.statSync(filename).isFile()) {
      return Effect.fail(cannotUse(filename, "it is not a file; use the path of a file"))
    }
    try {
      fs.accessSync(filename, fs.constants.R_OK | fs.constants.W_OK)
    } catch (cause) {
      return Effect.fail(notWritable(filename, `the file ${filename}`, cause))
    }
    return Effect.void
  })

/** The store's own connection: opened without writing, closed with the scope. */
export const openConnection = (
  filename: string,
  busyTimeoutMs: number
): Effect.Effect<Database.Database, StoreError.StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => new Database(filename, { fileMustExist: true, timeout: busyTimeoutMs }),
      catch: (cause) => storeError("open", filename, cause, busyTimeoutMs)
    }),
    (db) => Effect.sync(() => db.close())
  )

/** What an opened file holds, read before anything is written to it. */
export type Contents =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Ledgerflow"; readonly schemaVersion: number }
  | { readonly _tag: "Foreign"; readonly reason: string }

export const inspect = (
  db: Database.Database,
  filename: string,
  busyTimeoutMs: number
): Effect.Effect<Contents, StoreError.StoreError> =>
  Effect.try({
    try: (): Contents => {
      let tables: ReadonlyArray<unknown>
      try {
        tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all()
      } catch (cause) {
        if (codeOf(cause) === "SQLITE_NOTADB") return { _tag: "Foreign", reason: "it is not a SQLite database" }
        throw cause
      }
      if (tables.includes(metaTable)) {
        const meta = new Map(
          db.prepare<[], { key: unknown; value: unknown }>(`SELECT key, value FROM ${metaTable}`).all()
            .map((row) => [row.key, row.value])
        )
        // An empty marker table is a store that another process is creating right now.
        if (meta.size > 0) {
          const schemaVersion = Number(meta.get("schema_version"))
          return meta.get("format") === "ledgerflow" && Number.isInteger(schemaVersion)
            ? { _tag: "Ledgerflow", schemaVersion }
            : { _tag: "Foreign", reason: `its ${metaTable} table does not mark it as a ledgerflow store` }
        }
      }
      const others = tables.filter((name) =>
        typeof name !== "string" || !(name === metaTable || name === migrationsTable || name.startsWith("sqlite_"))
      )
      return others.length === 0
        ? { _tag: "Empty" }
        : { _tag: "Foreign", reason: `it holds other tables (${others.slice(0, 5).join(", ")})` }
    },
    catch: (cause) => storeError("open", filename, cause, busyTimeoutMs)
  })
