/**
 * The user's `ledgerflow.config.ts`: it exports `pipelines` (an array of `Pipeline`) and optionally `layer`
 * (a Layer providing what the pipelines need), and optionally `prices` (a `Pricing.PriceTable`). Loaded with
 * tsx, so a TypeScript config works without a build step. The commands that run pipeline code (replay,
 * resume, rollback, breaker reset) load it, and `cost` when `--config` is given (for its prices).
 */
import type { Engine, EventStore, Pipeline, RunError, StoreError } from "@ledgerflow/core"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { tsImport } from "tsx/esm/api"
import { badInput, type CliError } from "./exit.js"
import type { GlobalsService } from "./globals.js"

/** What a config's pipelines need: whatever its layer provides, known only at run time. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a config pipeline's requirements are unknown until run time
type Services = any

export interface Config {
  /** The file, as the user named it. */
  readonly file: string
  readonly pipelines: ReadonlyArray<Pipeline.Any>
  /** What the pipelines need; it must need nothing itself (the config contract). */
  readonly layer: Layer.Layer<Services, unknown, never> | undefined
  /** The config's own price table, unchecked (`ledgerflow cost` decodes it). */
  readonly prices: unknown
}

const isPipeline = (u: unknown): u is Pipeline.Any =>
  Predicate.isRecord(u) && typeof u["name"] === "string" && typeof u["version"] === "string" &&
  typeof u["run"] === "function" && Predicate.isRecord(u["codec"])

const isConfigLayer = (u: unknown): u is Layer.Layer<Services, unknown, never> => Layer.isLayer(u)

/** Load and check the config of `--config` (default `./ledgerflow.config.ts`). */
export const load = (globals: GlobalsService, command: string): Effect.Effect<Config, CliError> =>
  Effect.gen(function*() {
    const file = globals.config
    const absolute = path.resolve(file)
    if (!fs.existsSync(absolute)) {
      return yield* badInput(
        globals.configGiven
          ? `the config ${file} does not exist; pass --config with the path of your ledgerflow.config.ts`
          : `\`ledgerflow ${command}\` runs your pipelines' code, found through ./${file}, which does not exist here; cd to your project or pass --config PATH`
      )
    }
    const loaded = yield* Effect.tryPromise({
      try: () => tsImport(pathToFileURL(absolute).href, import.meta.url),
      catch: (cause) => badInput(`cannot load the config ${file}: ${firstLine(cause)}; fix it, or pass --config PATH`, cause)
    })
    return yield* check(file, loaded)
  })

/** An error in one line: its first line, and the next when the first only introduces it ("1 error:"). */
const firstLine = (cause: unknown): string => {
  const message = Predicate.hasProperty(cause, "message") && typeof cause.message === "string"
    ? cause.message
    : String(cause)
  const [first = message, second] = message.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  return first.endsWith(":") && second !== undefined ? `${first} ${second}` : first
}

/** Accept named exports or a default export object holding them. */
const check = (file: string, loaded: unknown): Effect.Effect<Config, CliError> => {
  const exports = Predicate.isRecord(loaded) ? loaded : {}
  const source = exports["pipelines"] === undefined && Predicate.isRecord(exports["default"])
    ? exports["default"]
    : exports
  const pipelines = source["pipelines"]
  if (!Array.isArray(pipelines) || pipelines.length === 0) {
    return Effect.fail(badInput(
      `the config ${file} exports no pipelines; add \`export const pipelines = [myPipeline]\` (values made with Pipeline.make)`
    ))
  }
  const wrong = pipelines.findIndex((p) => !isPipeline(p))
  if (wrong >= 0) {
    return Effect.fail(badInput(
      `the config ${file} exports pipelines[${wrong}], which is not a pipeline; make each one with Pipeline.make`
    ))
  }
  const names = pipelines.filter(isPipeline).map((p) => p.name)
  const twice = names.find((name, i) => names.indexOf(name) !== i)
  if (twice !== undefined) {
    return Effect.fail(badInput(`the config ${file} exports two pipelines named "${twice}"; pipeline names must be unique`))
  }
  const layer = source["layer"]
  if (layer !== undefined && !isConfigLayer(layer)) {
    return Effect.fail(badInput(`the config ${file} exports a \`layer\` that is not a Layer; export a Layer (or nothing)`))
  }
  return Effect.succeed({ file, pipelines: pipelines.filter(isPipeline), layer, prices: source["prices"] })
}

/** The config's pipeline of this name; `missing` says why it was wanted when the config lacks it. */
export const pipeline = (
  config: Config,
  name: string,
  missing: (has: string) => string
): Effect.Effect<Pipeline.Any, CliError> => {
  const found = config.pipelines.find((p) => p.name === name)
  return found !== undefined
    ? Effect.succeed(found)
    : Effect.fail(badInput(missing(`${config.file} exports ${config.pipelines.map((p) => p.name).join(", ")}`)))
}

/**
 * What a command that runs a run's code needs: the config (loaded first, so a missing config is reported
 * before an unknown run), the run (by id or unique prefix), and its pipeline from the config.
 */
export const forRun = (
  globals: GlobalsService,
  engine: Engine.EngineService,
  command: string,
  runIdOrPrefix: string
): Effect.Effect<
  { readonly config: Config; readonly run: EventStore.RunRecord; readonly pipeline: Pipeline.Any },
  CliError | RunError.RunNotFound | StoreError.StoreError
> =>
  Effect.gen(function*() {
    const config = yield* load(globals, command)
    const run = yield* engine.getRun(runIdOrPrefix)
    const found = yield* pipeline(config, run.pipeline, (has) =>
      `run ${run.runId} belongs to pipeline "${run.pipeline}", which the config does not export (${has}); add it to \`pipelines\` there, or pass --config PATH`)
    return { config, run, pipeline: found }
  })

/** The config's layer did not build; nothing of the effect ran. */
class LayerFailed extends Data.TaggedError("LayerFailed")<{ readonly cause: unknown }> {}

/**
 * Run an effect that executes the config's pipelines with the config's layer. A pipeline needing a service
 * the layer does not provide is a config problem, told in one line. With `withoutLayer` (a replay: no step
 * body runs, so the services behind them are not used), a layer that fails to build — say, for want of an
 * API key — is noted and the effect runs without it.
 */
export const provide = <A, E>(
  config: Config,
  effect: Effect.Effect<A, E, Services>,
  options: { readonly withoutLayer?: (why: string, cause: unknown) => Effect.Effect<void> } = {}
): Effect.Effect<A, E | CliError, Engine.Engine | EventStore.EventStore> => {
  const layer = config.layer
  const provided: Effect.Effect<A, E | CliError, Services> = layer === undefined
    ? effect
    : Effect.provide(effect, Layer.mapError(layer, (cause) => new LayerFailed({ cause }))).pipe(
      Effect.catchAll((error: E | LayerFailed): Effect.Effect<A, E | CliError, Services> => {
        if (!(error instanceof LayerFailed)) return Effect.fail(error)
        const why = `the \`layer\` of ${config.file} failed to build: ${firstLine(error.cause)}`
        return options.withoutLayer === undefined
          ? Effect.fail(badInput(why, error.cause))
          : Effect.zipRight(options.withoutLayer(why, error.cause), effect)
      })
    )
  return provided.pipe(
    Effect.catchSomeDefect((defect) => {
      const message = defect instanceof Error ? defect.message : ""
      const service = /^Service not found: (.*?)(?: \(defined at|$)/m.exec(message)
      return service === null ? Option.none() : Option.some(Effect.fail(badInput(
        `a pipeline needs the service ${service[1]}, which ${config.file} does not provide; export a \`layer\` providing it`,
        defect
      )))
    })
  )
}
