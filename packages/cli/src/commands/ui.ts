/**
 * `ledgerflow ui`: a local, read-only web view of the store — runs, a run's timeline, cost and failures —
 * on 127.0.0.1 (another address only when `--host` says so, and then it warns).
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Engine } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as Config from "../internal/config.js"
import { Globals, type GlobalsService, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import * as Store from "../internal/store.js"
import type { Breakers } from "../ui/pages/failures.js"
import { listen } from "../ui/listen.js"
import { Ui } from "../ui/server.js"

export const defaultPort = 4400
const loopback = ["127.0.0.1", "localhost", "::1"]

/** The breakers of the config's pipelines, loaded once (the config is code: importing it takes a while). */
const breakers = (globals: GlobalsService) =>
  Effect.gen(function*() {
    if (!globals.configGiven && !fs.existsSync(globals.config)) {
      return Either.left(`there is no ./${globals.config} in the folder it was started in`) satisfies Breakers
    }
    const config = yield* Effect.either(Config.load(globals, "ui"))
    if (Either.isLeft(config)) return Either.left(config.left.message) satisfies Breakers
    const engine = yield* Engine.Engine
    const states = yield* Effect.either(Effect.forEach(config.right.pipelines, (p) => engine.breakerState(p)))
    if (Either.isLeft(states)) return Either.left(states.left.message) satisfies Breakers
    return Either.right(states.right.map((s) => ({
      pipeline: s.pipeline,
      version: s.version,
      state: s.threshold === 0 ? "off" as const : s.open === undefined ? "closed" as const : "open" as const,
      why: s.open === undefined
        ? s.threshold === 0 ? "the pipeline turned its breaker off" : `opens after ${s.threshold} identical deterministic failures`
        : `${s.open.runs.length} runs failed the same way`
    }))) satisfies Breakers
  })

/** Open the URL in the desktop's browser; a machine without one is told to open it by hand. */
const openBrowser = (url: string) =>
  Effect.async<void>((resume) => {
    const [cmd, args] = process.platform === "darwin"
      ? ["open", [url]]
      : process.platform === "win32"
      ? ["cmd", ["/c", "start", "", url]]
      : ["xdg-open", [url]]
    const child = spawn(cmd, args, { stdio: "ignore", detached: true })
    child.on("error", (error) => {
      process.stderr.write(`could not open a browser (${error.message}); open ${url} yourself\n`)
      resume(Effect.void)
    })
    child.on("spawn", () => {
      child.unref()
      resume(Effect.void)
    })
  })

export const command = Command.make("ui", {
  ...globalOptions,
  port: Options.integer("port").pipe(
    Options.withPseudoName("N"),
    Options.withDescription(`The port to serve on (default ${defaultPort}; 0 takes any free port).`),
    Options.mapEffect((n) =>
      n >= 0 && n <= 65535
        ? Effect.succeed(n)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--port takes 0 to 65535; got ${n}`)))
    ),
    Options.withDefault(defaultPort)
  ),
  host: Options.text("host").pipe(
    Options.withPseudoName("HOST"),
    Options.withDescription("The address to serve on (default 127.0.0.1, this machine only). Another address exposes the ledger to whoever can reach it: it has no login."),
    Options.optional
  ),
  open: Options.boolean("open").pipe(Options.withDescription("Open the view in the default browser."))
}, (args) =>
  Effect.flatMap(Globals, (globals) =>
    Store.provide(Effect.gen(function*() {
      const host = Option.getOrElse(args.host, () => "127.0.0.1")
      const local = loopback.includes(host)
      const cached = yield* Effect.cached(breakers(globals))
      const engine = yield* Engine.Engine
      yield* listen({
        host,
        port: args.port,
        onListening: (url) =>
          Effect.gen(function*() {
            yield* Output.lines([`ledgerflow ui: ${url} (read-only view of ${globals.db}; Ctrl-C stops it)`])
            if (!local) {
              yield* Output.note(
                `note: serving on ${host} because --host says so: anyone who can reach this address can read the ledger (there is no login)`
              )
            }
            if (args.open) yield* openBrowser(url)
          })
      }).pipe(Effect.provideService(Ui, {
        store: globals.db,
        breakers: Effect.provideService(cached, Engine.Engine, engine),
        // Bound to this machine: answer to this machine's names only. Bound elsewhere: to whatever it is called.
        hosts: local ? ["127.0.0.1", "localhost", "[::1]"] : undefined
      }))
    })))).pipe(Command.withDescription(describe(
    "Serve a read-only web view of the store on 127.0.0.1: the runs (filters as `ledgerflow runs`, refreshed while runs change), each run's timeline (attempts on a time axis, retries, served steps, compensations, tokens and dollars), cost (as `ledgerflow cost`, with charts) and failures by fingerprint with each pipeline's storm breaker.",
    [
      { command: "ledgerflow ui", does: `serve on http://127.0.0.1:${defaultPort}` },
      { command: "ledgerflow ui --port 0 --open", does: "any free port, opened in the browser" }
    ],
    ["It reads the store anew for every page and never writes to it. The breakers need the pipelines' code (see --config); without it, the failures page says so. Ctrl-C stops it."]
  )))
