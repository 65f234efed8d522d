/**
 * `ledgerflow resume <run>`: continue a failed run after a fix. Completed steps are served from the log
 * (they cost nothing); it prints what it served and the tokens that saved.
 */
import { Command, Options } from "@effect/cli"
import { Engine } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Config from "../internal/config.js"
import * as Events from "../internal/events.js"
import { failed } from "../internal/exit.js"
import * as format from "../internal/format.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { fields } from "../internal/render.js"
import * as Run from "../internal/run.js"
import * as Store from "../internal/store.js"
import * as Timeline from "../internal/timeline.js"

export const command = Command.make("resume", {
  ...globalOptions,
  run: Run.argument,
  reexecuteDiverged: Options.boolean("reexecute-diverged").pipe(
    Options.withDescription("Run again the steps whose input changed since the log recorded them, instead of refusing.")
  ),
  wait: Options.boolean("wait").pipe(
    Options.withDescription(
      "When a live worker holds the run, wait until it finishes, fails or dies, then resume (instead of refusing). A worker of this host whose process is gone never holds a run."
    )
  )
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const { config, pipeline, run: before } = yield* Config.forRun(globals, engine, "resume", args.run)
    const exit = yield* Output.withProgress(`resuming ${before.runId}`, () =>
      Effect.exit(Config.provide(
        config,
        engine.resume(pipeline, before.runId, {
          reexecuteDiverged: args.reexecuteDiverged,
          ifRunning: args.wait ? "wait" : "fail"
        })
      )))
    const after = yield* engine.getRun(before.runId)
    // Refused before doing anything (in progress, not resumable, breaker open): only the error to tell.
    if (Exit.isFailure(exit) && after.lastSeq === before.lastSeq) return yield* exit

    const logged = yield* Events.read(before.runId)
    const earlier = Timeline.make(logged.filter((e) => e.stored.seq <= before.lastSeq))
    const now = Timeline.make(logged)
    const added = logged.filter((e) => e.stored.seq > before.lastSeq)
    const served = added.flatMap((e) => e.event._tag === "StepsServed" ? e.event.stepIds : [])
    const ran = [...new Set(added.flatMap((e) =>
      e.event._tag === "StepCompleted" || e.event._tag === "StepAttemptFailed" ? [e.event.stepId] : []
    ))]
    const attemptsOf = (stepId: string) =>
      added.filter((e) =>
        (e.event._tag === "StepCompleted" || e.event._tag === "StepAttemptFailed") && e.event.stepId === stepId
      ).length
    const saved = {
      inputTokens: now.saved.inputTokens - earlier.saved.inputTokens,
      outputTokens: now.saved.outputTokens - earlier.saved.outputTokens,
      cacheWriteTokens: now.saved.cacheWriteTokens - earlier.saved.cacheWriteTokens,
      cacheReadTokens: now.saved.cacheReadTokens - earlier.saved.cacheReadTokens
    }
    const completed = added.find((e) => e.event._tag === "RunCompleted")
    const output = completed?.event._tag === "RunCompleted" ? completed.event.output : undefined

    if (globals.json) {
      yield* Output.json({
        runId: after.runId,
        pipeline: after.pipeline,
        version: after.version,
        status: after.status,
        served,
        saved,
        ran: ran.map((stepId) => ({ stepId, attempts: attemptsOf(stepId) })),
        output: output ?? null,
        failureClass: after.failureClass ?? null,
        failureReason: after.failureReason ?? null
      })
    } else if (before.status === "completed" && added.length === 0) {
      yield* Output.lines([`run ${after.runId} had already completed; nothing to resume`])
    } else {
      const { style } = globals
      yield* Output.lines([
        `resumed ${after.runId} (${Run.label(after)}): ${
          after.status === "completed" ? style.green("completed") : style.red(Run.statusText(after))
        }`,
        ...fields([
          ["served", served.length > 0 ? `${served.join(", ")} (from the log, not run again)` : "nothing"],
          ["saved", `${format.tokens(saved)} tokens`],
          ["ran", ran.length > 0 ? ran.map((id) => `${id} (${attemptsOf(id)} attempt${attemptsOf(id) === 1 ? "" : "s"})`).join(", ") : "nothing"],
          ...(output !== undefined ? [["output", format.json(output)] as const] : [])
        ], globals)
      ])
    }
    // The run failed again: its failure is the command's error (exit 1).
    if (Exit.isFailure(exit)) {
      const service = /Service not found: ([^\s(]+)/.exec(after.failureReason ?? "")
      if (service !== null) {
        // The engine journals it as the run's failure; the fix is in the config.
        return yield* failed(
          `the run failed again: a step needs the service ${service[1]}, which ${config.file} does not provide; export a \`layer\` providing it, then resume again`
        )
      }
      return yield* exit
    }
  }))).pipe(Command.withDescription(describe(
    "Continue a failed (or rolled back, or stuck) run after a fix. Steps the log has completed are served from it and cost nothing; the rest run. Prints what was served, the tokens that saved, and what ran. Needs the pipeline's code: see --config.",
    [
      { command: "ledgerflow resume run_0m8x2k", does: "finish the run after fixing what failed" },
      { command: "ledgerflow resume run_0m8x2k --reexecute-diverged", does: "also run again the steps whose input changed" },
      { command: "ledgerflow resume run_0m8x2k --wait", does: "wait for the live worker that holds the run, then resume" }
    ],
    ["Exit 0 when the run completes, 1 when it fails again."]
  )))
