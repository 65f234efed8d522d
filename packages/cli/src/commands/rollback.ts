/**
 * `ledgerflow rollback <run>`: undo a failed run — run its pending compensations in reverse order.
 */
import { Command } from "@effect/cli"
import { Engine } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Config from "../internal/config.js"
import { CliError, Failed } from "../internal/exit.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { fields } from "../internal/render.js"
import * as Run from "../internal/run.js"
import * as Store from "../internal/store.js"

export const command = Command.make("rollback", {
  ...globalOptions,
  run: Run.argument
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const { config, pipeline, run } = yield* Config.forRun(globals, engine, "rollback", args.run)
    const report = yield* Output.withProgress(
      `rolling back ${run.runId}`,
      () => Config.provide(config, engine.rollback(pipeline, run.runId))
    )
    const done = report.status === "rolled_back"
    if (globals.json) {
      yield* Output.json(report)
    } else {
      const { style } = globals
      yield* Output.lines([
        `rollback of ${report.runId} (${Run.label(run)}): ${done ? style.green(report.status) : style.red(report.status)}`,
        ...fields([
          ["undone", report.compensated.length > 0 ? report.compensated.join(", ") : "nothing (no pending compensation)"],
          ...(report.pending.length > 0 ? [["pending", report.pending.join(", ")] as const] : []),
          ["note", report.message]
        ], globals)
      ])
    }
    if (!done) return yield* new CliError({ code: Failed, message: "" })
  }))).pipe(Command.withDescription(describe(
    "Undo a failed run: replay it against its log to find the completed steps (no step body runs), then run their compensations in reverse order, each journaled and retried on transient failures. Outputs kept on rollback (paid inference) stay in the log. Also finishes a rollback a crash left half done. Needs the pipeline's code: see --config.",
    [
      { command: "ledgerflow rollback run_0m8x2k", does: "delete the file and the row a failed run wrote" }
    ],
    ["Exit 0 when the run is rolled back, 1 when something is left to undo (the run needs attention) or it is past an irreversible step (refused: the run is left as it was; resume it instead)."]
  )))
