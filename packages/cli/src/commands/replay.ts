/**
 * `ledgerflow replay <run>`: re-execute the run's pipeline code against its log with no side effects (no
 * step body runs) and report each step as served, reordered, diverged or not in the journal. Exit 1 on
 * divergence.
 */
import { Command, Options } from "@effect/cli"
import { Engine } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Config from "../internal/config.js"
import { CliError, Failed } from "../internal/exit.js"
import * as format from "../internal/format.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { type Cell, table, wrap } from "../internal/render.js"
import * as Run from "../internal/run.js"
import * as Store from "../internal/store.js"

const verdicts = {
  identical: "identical: every step the code asked for was served from the log",
  reordered:
    "reordered: every step was served from the log, some from another occurrence's completion (concurrent calls that started in another order); nothing was paid again",
  incomplete:
    "incomplete: the code reached a step the run never completed (it stopped there); `ledgerflow resume` continues from it",
  diverged:
    "diverged: the pipeline's code and the log disagree; fix the code, or `ledgerflow resume --reexecute-diverged` runs the changed steps again"
} as const

export const command = Command.make("replay", {
  ...globalOptions,
  run: Run.argument,
  verbose: Options.boolean("verbose").pipe(
    Options.withAlias("v"),
    Options.withDescription("Say why the config's layer did not build, when it did not (say, no ANTHROPIC_API_KEY).")
  )
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const { config, pipeline, run } = yield* Config.forRun(globals, engine, "replay", args.run)
    if (pipeline.version !== run.version && !globals.json) {
      yield* Output.note(
        globals.errStyle.yellow(
          `note: run ${run.runId} was made by ${Run.label(run)}; the config has version ${pipeline.version}`
        )
      )
    }
    const report = yield* Output.withProgress(
      `replaying ${run.runId}`,
      () =>
        Config.provide(config, engine.replay(pipeline, run.runId), {
          // A replay runs no step body, so a layer that cannot build (no API key, most often) is no
          // reason to stop: one short line, and the whole reason with --verbose.
          withoutLayer: (why, cause) =>
            Output.note(globals.errStyle.yellow(
              args.verbose
                ? `note: ${why}; replaying without it, as no step body runs in a replay`
                : `note: replaying without the config's layer, which did not build${
                  Predicate.hasProperty(cause, "_tag") && typeof cause._tag === "string" ? ` (${cause._tag})` : ""
                }; a replay needs none (--verbose: why)`
            ))
        })
    )
    // Steps the table shows (diverged, or undone and not in the journal) need no second mention.
    const unclaimed = report.unclaimed.filter((id) => !report.steps.some((s) => s.stepId === id))
    if (globals.json) {
      yield* Output.json(report)
    } else {
      const { style } = globals
      const outcome = (o: string): Cell => ({
        text: o,
        paint: o === "served" ? style.green : o === "diverged" ? style.red : style.yellow
      })
      yield* Output.lines([
        `replay of ${run.runId} (${Run.label(run)}) against its log; no step body ran`,
        "",
        ...table(
          [{ header: "STEP", max: 32 }, { header: "OUTCOME" }, { header: "DETAIL", flex: true, wrap: true }],
          report.steps.map((entry) => [
            entry.stepId,
            outcome(entry.outcome),
            entry.outcome === "diverged" && entry.expectedInputHash !== undefined
              ? `input ${format.shortHash(entry.inputHash)} differs from the log's ${format.shortHash(entry.expectedInputHash)}`
              : entry.message ?? ""
          ]),
          globals
        ),
        ...(unclaimed.length > 0
          ? ["", ...wrap(`completed in the log but not asked for by the code: ${unclaimed.join(", ")}`, globals.width)]
          : []),
        "",
        ...wrap(verdicts[report.outcome], globals.width).map((l, i) =>
          i === 0 ? (report.outcome === "diverged" ? style.red(l) : report.outcome === "identical" ? style.green(l) : style.yellow(l)) : l
        )
      ])
    }
    if (report.outcome === "diverged") return yield* new CliError({ code: Failed, message: "" })
  }))).pipe(Command.withDescription(describe(
    "Re-execute a run's pipeline code against its log, with no side effects: every step is served from the log, none runs. Reports each step as served, reordered (served from another occurrence's completion of the same step and input: concurrent calls that started in another order), diverged (the code now calls it with another input) or not in the journal (the run never completed it). Needs the pipeline's code: see --config.",
    [
      { command: "ledgerflow replay run_0m8x2k", does: "check that today's code still agrees with what the run did" },
      { command: "ledgerflow replay run_0m8x2k --config apps/etl/ledgerflow.config.ts", does: "with the pipelines of another config" },
      { command: "ledgerflow replay run_0m8x2k --verbose", does: "also say why the config's layer did not build, if it did not" }
    ],
    ["Exit 0 when the code and the log agree (or the run simply stopped early), 1 when they diverge."]
  )))
