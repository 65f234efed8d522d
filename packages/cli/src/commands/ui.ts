/**
 * `ledgerflow ui`: a local, read-only web view of the store — runs, a run's timeline, cost and failures —
 * on 127.0.0.1 (another address only when `--host` says so, and then it warns).
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Engine, type Pipeline } from "@ledgerflow/core"
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
import type { Breaker, Breakers } from "../ui/pages/failures.js"

export const defaultPort = 4400
const loopback = ["127.0.0.1", "localhost", "::1"]

/** The config's pipelines, or why there are none here. Loading runs the config's code: done once. */
const pipelines = (globals: GlobalsService): Effect.Effect<Either.Either<ReadonlyArray<Pipeline.Any>, string>> =>
  !globals.configGiven && !fs.existsSync(globals.config)
    ? Effect.succeed(Either.left(`there is no ./${globals.config} in the folder it was started in`))
    : Effect.map(Effect.either(Config.load(globals, "ui")), Either.mapBoth({ onLeft: (e) => e.message, onRight: (c) => c.pipelines }))

/** The breakers' states now (they change as runs fail), of the pipelines loaded once. */
const breakers = (
  loaded: Effect.Effect<Either.Either<ReadonlyArray<Pipeline.Any>, string>>,
  engine: Engine.Engine["Type"]
): Effect.Effect<Breakers> =>
  Effect.gen(function*() {
    const found = yield* loaded
    if (Either.isLeft(found)) return Either.left(found.left)
    const states = yield* Effect.either(Effect.forEach(found.right, (p) => engine.breakerState(p)))
    if (Either.isLeft(states)) return Either.left(states.left.message)
    return Either.right(states.right.map((s): Breaker => ({
      pipeline: s.pipeline,
      version: s.version,
      state: s.threshold === 0 ? "off" : s.open === undefined ? "closed" : "open",
      why: s.open === undefined
        ? s.threshold === 0 ? "the pipeline turned its breaker off" : `opens after ${s.threshold} identical deterministic failures`
        : `${s.open.runs.length} runs failed the same way`
    })))
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
      const loaded = yield* Effect.cached(pipelines(globals))
      // Load the config while the first pages are served: the failures page needs it.
      yield* Effect.fork(loaded)
      const engine = yield* Engine.Engine
      // The HTTP server's modules load only for this command: the others start faster without them.
      const { listen } = yield* Effect.promise(() => import("../ui/listen.js"))
      yield* listen({
        ui: {
          store: globals.db,
          breakers: breakers(loaded, engine),
          // Bound to this machine: answer to its names only. Bound elsewhere: to whatever it is called there.
          hosts: local ? ["127.0.0.1", "localhost", "[::1]"] : undefined
        },
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
      })
    })))).pipe(Command.withDescription(describe(
    "Serve a read-only web view of the store on 127.0.0.1: the runs (filters as `ledgerflow runs`, refreshed while runs change), each run's timeline (attempts on a time axis, retries, served steps, compensations, tokens and dollars), cost (as `ledgerflow cost`, with charts) and failures by fingerprint with each pipeline's storm breaker.",
    [
      { command: "ledgerflow ui", does: `serve on http://127.0.0.1:${defaultPort}` },
      { command: "ledgerflow ui --port 0 --open", does: "any free port, opened in the browser" }
    ],
    ["It reads the store anew for every page and never writes to it. The breakers need the pipelines' code (see --config); without it, the failures page says so. Ctrl-C stops it."]
  )))
