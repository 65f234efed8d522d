/**
 * `ledgerflow breaker list` and `ledgerflow breaker reset <pipeline>`: see which pipelines' storm breakers are
 * open, and close one so that new runs of its current version are accepted again (after the fix).
 */
import { Args, Command } from "@effect/cli"
import { Engine } from "@ledgerflow/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Config from "../internal/config.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { table } from "../internal/render.js"
import * as Store from "../internal/store.js"

export const reset = Command.make("reset", {
  ...globalOptions,
  pipeline: Args.text({ name: "pipeline" }).pipe(Args.withDescription("The pipeline's name, as in Pipeline.make."))
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const config = yield* Config.load(globals, "breaker reset")
    const pipeline = yield* Config.pipeline(config, args.pipeline, (has) => `no pipeline is named "${args.pipeline}" (${has})`)
    yield* engine.resetBreaker(pipeline)
    const at = yield* Clock.currentTimeMillis
    if (globals.json) return yield* Output.json({ pipeline: pipeline.name, version: pipeline.version, resetAt: at })
    yield* Output.lines([
      `closed the storm breaker of ${pipeline.name}@${pipeline.version}: failures before now no longer count, new runs start`
    ])
  }))).pipe(Command.withDescription(describe(
    "Close the storm breaker of a pipeline's current version. The breaker opens when its runs keep failing deterministically the same way, and refuses new runs (CircuitOpen) so that redeliveries stop paying for a failure that cannot heal. Reset it once the cause is fixed (or bump the pipeline's version). Needs the pipeline's code: see --config.",
    [{ command: "ledgerflow breaker reset retry-storm", does: "accept new runs of retry-storm again" }]
  )))

export const list = Command.make("list", { ...globalOptions }, () =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const config = yield* Config.load(globals, "breaker list")
    const states = yield* Effect.forEach(config.pipelines, (pipeline) => engine.breakerState(pipeline))
    if (globals.json) {
      return yield* Output.ndjson(states.map((s) => ({
        pipeline: s.pipeline,
        version: s.version,
        threshold: s.threshold,
        state: s.threshold === 0 ? "off" : s.open === undefined ? "closed" : "open",
        fingerprint: s.open?.fingerprint ?? null,
        runs: s.open?.runs ?? [],
        message: s.open?.message ?? null
      })))
    }
    const { style, width } = globals
    yield* Output.lines(table(
      [{ header: "PIPELINE" }, { header: "STATE" }, { header: "WHY", flex: true, wrap: true }],
      states.map((s) => [
        `${s.pipeline}@${s.version}`,
        s.threshold === 0
          ? "off"
          : s.open === undefined
          ? { text: "closed", paint: style.green }
          : { text: "open", paint: style.red },
        s.open === undefined
          ? s.threshold === 0 ? "the pipeline turned its breaker off" : `opens after ${s.threshold} identical deterministic failures`
          : `${s.open.runs.length} runs failed the same way (${s.open.runs.join(", ")}); reset it once fixed`
      ]),
      { width, style }
    ))
  }))).pipe(Command.withDescription(describe(
    "The storm breaker of each pipeline in the config (its current version): closed, open (and the runs that opened it) or off. Needs the pipelines' code: see --config.",
    [{ command: "ledgerflow breaker list", does: "which pipelines refuse new runs" }]
  )))

/** The `breaker` group's help; its subcommands are put under it by `Cli.ts`. */
export const description = describe(
  "The storm breaker: when runs of a pipeline version keep failing deterministically with one fingerprint, new runs are refused until the version changes or the breaker is reset.",
  [
    { command: "ledgerflow breaker list", does: "which pipelines refuse new runs" },
    { command: "ledgerflow breaker reset retry-storm", does: "accept new runs of retry-storm again" }
  ]
)
