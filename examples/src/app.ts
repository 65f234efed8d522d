/**
 * The application the examples' pipelines write to: its own SQLite database (not ledgerflow's), and a
 * customer webhook. Both are services, so a config provides them with a layer.
 */
import Database from "better-sqlite3"
import { Config, Context, Effect, Layer } from "effect"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"

/** The application's database: a real SQLite file; its errors (a missing column) are real ones. */
export class AppDb extends Context.Tag("examples/AppDb")<AppDb, Database.Database>() {}

export const defaultAppDb = ".ledgerflow/app.db"

/** Open the application database (`LEDGERFLOW_APP_DB`, default `.ledgerflow/app.db`), closed with the scope. */
export const AppDbLive = Layer.scoped(
  AppDb,
  Effect.gen(function*() {
    const filename = yield* Config.string("LEDGERFLOW_APP_DB").pipe(Config.withDefault(defaultAppDb))
    mkdirSync(dirname(filename), { recursive: true })
    return yield* Effect.acquireRelease(
      Effect.sync(() => new Database(filename)),
      (db) => Effect.sync(() => db.close())
    )
  }).pipe(Effect.orDie)
)

/** The customer's webhook endpoint. */
export class Webhook extends Context.Tag("examples/Webhook")<Webhook, { readonly url: string }>() {}

export const WebhookLive = Layer.effect(
  Webhook,
  Effect.map(
    Config.string("LEDGERFLOW_WEBHOOK_URL").pipe(Config.withDefault("http://127.0.0.1:4101/hooks/report"), Effect.orDie),
    (url) => ({ url })
  )
)
