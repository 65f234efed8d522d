/**
 * Opening the store a command works on: a SQLite file, or a Postgres server when `--db` is a
 * `postgres://` URL. Every command reads an existing store: a missing file is an error that says where we
 * looked, never a new empty store. A URL is only ever shown without its password.
 */
import { Engine, type EventStore } from "@ledgerflow/core"
import { PgStore, SqliteStore } from "@ledgerflow/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import { hostname } from "node:os"
import { badInput, type CliError, fromError } from "./exit.js"
import { Globals, type GlobalsService } from "./globals.js"

const whereFrom = (globals: GlobalsService): string =>
  globals.dbFrom === "--db"
    ? "given with --db"
    : globals.dbFrom === "LEDGERFLOW_DB"
    ? "from $LEDGERFLOW_DB"
    : "the default; pass --db PATH or set LEDGERFLOW_DB to use another"

/** The engine over the store file of `--db`, which must exist. */
export const layer = (globals: GlobalsService): Layer.Layer<Engine.Engine | EventStore.EventStore, CliError> =>
  Layer.unwrapEffect(Effect.suspend(() => {
    const engine = Engine.layer({ owner: `ledgerflow-cli@${hostname()}/${process.pid}` })
    if (PgStore.isUrl(globals.db)) {
      // Unreachable server, refused login, newer schema: one line (the store's message names the URL
      // without its password), nothing done yet.
      const store = PgStore.layer({ url: globals.db, create: false }).pipe(Layer.mapError((error) => badInput(error.message, error)))
      return Effect.succeed(engine.pipe(Layer.provideMerge(store)))
    }
    if (!fs.existsSync(globals.db)) {
      return Effect.fail(badInput(
        `no ledgerflow store at ${globals.db} (${whereFrom(globals)}); run a pipeline first, or point --db at an existing store`
      ))
    }
    const store = SqliteStore.layer({ filename: globals.db }).pipe(
      // Opening failed: not a store, a newer store, unreadable. Nothing has been done yet: bad input. The
      // store says what to do in its own terms ("use another path"); the CLI adds where the path came from,
      // which says how to give another (--db, LEDGERFLOW_DB). A newer store needs a newer ledgerflow instead.
      Layer.mapError((error) =>
        badInput(error._tag === "StoreTooNew" ? error.message : `${error.message} (${whereFrom(globals)})`, error)
      )
    )
    return Effect.succeed(engine.pipe(Layer.provideMerge(store)))
  }))

/**
 * Run a command's body against the store of `--db`. Its errors become `CliError`s: each says in one line
 * what is wrong and carries its exit code.
 */
export const provide = <A, E, R>(
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, CliError, Exclude<R, Engine.Engine | EventStore.EventStore> | Globals> =>
  Effect.flatMap(Globals, (globals) => Effect.provide(body, layer(globals))).pipe(Effect.mapError(fromError))
