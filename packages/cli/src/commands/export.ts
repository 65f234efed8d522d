/**
 * `ledgerflow export`: the event log as NDJSON — one JSON object a line with the envelope (runId, seq,
 * type, v, at) and the event's fields — for DuckDB, jq or any log pipeline.
 */
import { Command, Options } from "@effect/cli"
import { Engine } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Events from "../internal/events.js"
import * as format from "../internal/format.js"
import { options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import * as Since from "../internal/since.js"
import * as Store from "../internal/store.js"

export const command = Command.make("export", {
  ...globalOptions,
  run: Options.text("run").pipe(
    Options.withPseudoName("RUN"),
    Options.withDescription("Only this run's events (an id, or a unique prefix of one)."),
    Options.optional
  ),
  since: Since.option("events")
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const engine = yield* Engine.Engine
    const since = Option.getOrUndefined(args.since)
    const runs = Option.isSome(args.run)
      ? [yield* engine.getRun(args.run.value)]
      // A run updated before `since` has no event after it. Oldest first, like a log.
      : [...yield* engine.runs({ since })].reverse()
    let written = 0
    yield* Output.withProgress("exporting", (progress) =>
      Effect.forEach(runs, (run, i) =>
        Effect.flatMap(Events.read(run.runId), (logged) => {
          const lines = logged.filter((e) => since === undefined || e.stored.at >= since).map(Events.toJson)
          written += lines.length
          progress.update(`${format.count(written)} events, ${i + 1}/${runs.length} runs`)
          // One run at a time: memory stays flat in the size of the log.
          return Output.ndjson(lines)
        }), { discard: true }))
    if (written === 0) yield* Output.note("no events match")
  }))).pipe(Command.withDescription(describe(
    "Write events as NDJSON on stdout: one JSON object a line with runId, seq, type, v (format version), at (epoch ms) and the event's own fields as the log encodes them. Runs oldest first, each run's events in order.",
    [
      { command: "ledgerflow export > events.ndjson", does: "the whole log" },
      { command: "ledgerflow export --run run_0m8x2k | jq -c 'select(.type == \"StepAttemptFailed\")'", does: "one run's failed attempts" },
      {
        command: "ledgerflow export --since 1d > day.ndjson && duckdb -c \"select type, count(*) from read_json_auto('day.ndjson') group by type\"",
        does: "a day's events counted by type"
      }
    ],
    ["--json changes nothing here: the output is always NDJSON."]
  )))
