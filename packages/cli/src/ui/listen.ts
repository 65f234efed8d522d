/**
 * Serving the UI: bind the Node HTTP server (127.0.0.1 unless told otherwise), say where it is, and serve
 * until interrupted (Ctrl-C), when the scope closes the server and the store.
 */
import { HttpServer } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Engine, EventStore } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import { createServer } from "node:http"
import { badInput, type CliError } from "../internal/exit.js"
import { app, Ui, type UiService } from "./server.js"

export interface ListenOptions {
  readonly ui: UiService
  readonly host: string
  readonly port: number
  /** Called once the server listens, with its URL. */
  readonly onListening: (url: string) => Effect.Effect<void>
}

/** The cause's system error code (`EADDRINUSE`), wherever the platform wrapped it. */
const codeOf = (error: unknown): string | undefined => {
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    if (Predicate.hasProperty(e, "code") && typeof e.code === "string") return e.code
    e = Predicate.hasProperty(e, "cause") ? e.cause : undefined
  }
  return undefined
}

export const listen = (options: ListenOptions): Effect.Effect<never, CliError, Engine.Engine | EventStore.EventStore> =>
  Effect.gen(function*() {
    yield* HttpServer.serveEffect(Effect.provideService(app, Ui, options.ui))
    const url = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
    yield* options.onListening(url)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(
      NodeHttpServer.layer(() => createServer(), { host: options.host, port: options.port }).pipe(
        Layer.mapError((error) => {
          const code = codeOf(error)
          const where = `${options.host}:${options.port}`
          return badInput(
            code === "EADDRINUSE"
              ? `cannot serve on ${where}: the port is in use; pass another --port (--port 0 takes any free one)`
              : code === "EADDRNOTAVAIL" || code === "ENOTFOUND"
              ? `cannot serve on ${where}: this machine has no such address; leave --host out for 127.0.0.1`
              : code === "EACCES"
              ? `cannot serve on ${where}: not allowed to bind that port; use one above 1024`
              : `cannot serve on ${where}: ${error.message}`,
            error
          )
        })
      )
    )
  )
