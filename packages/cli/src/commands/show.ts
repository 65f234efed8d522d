/**
 * `ledgerflow show <run>`: a run's timeline — every step, attempt, classification and reason, retry delay,
 * token usage, completion served from the log, compensation, and the outcome.
 */
import { Command, Options } from "@effect/cli"
import { Engine, type EventStore } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Events from "../internal/events.js"
import * as format from "../internal/format.js"
import { Globals, type GlobalsService, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { type Cell, fields, type Style, table } from "../internal/render.js"
import * as Run from "../internal/run.js"
import * as Store from "../internal/store.js"
import * as Timeline from "../internal/timeline.js"

const paint = (tone: Timeline.Tone, style: Style): (s: string) => string =>
  tone === "ok" ? style.green : tone === "fail" ? style.red : tone === "warn" ? style.yellow : tone === "quiet" ? style.dim : (s) => s

const header = (run: EventStore.RunRecord, timeline: Timeline.Timeline, executions: number, globals: GlobalsService) => {
  const failure = run.failureReason !== undefined && run.status !== "completed"
    ? [["failure", run.failureReason] as const]
    : []
  return fields([
    ["run", run.runId],
    ["pipeline", Run.label(run)],
    ["key", run.key],
    ["status", Run.statusText(run)],
    ...failure,
    ["created", format.time(run.createdAt)],
    ["updated", format.time(run.updatedAt)],
    // Redeliveries of the key (a retry storm): how many, and how few of them executed anything.
    ...(run.deliveries > 1
      ? [["deliveries", `${Run.deliveriesText(run.deliveries, executions)}; last ${format.time(run.lastDeliveredAt)}`] as const]
      : []),
    ...(run.parentRunId !== undefined ? [["parent", run.parentRunId] as const] : []),
    ...(run.correlationId !== undefined ? [["correlation", run.correlationId] as const] : []),
    ["events", String(timeline.rows.length)]
  ], globals)
}

const events = (timeline: Timeline.Timeline, detail: { readonly verbose: boolean; readonly full: boolean }, globals: GlobalsService) =>
  table(
    [
      // Fixed widths for times: the table's shape does not depend on how long things took.
      { header: "TIME", align: "right", min: 7 },
      { header: "STEP", max: 24 },
      { header: "TOOK", align: "right", min: 5 },
      { header: "EVENT", flex: true, wrap: true }
    ],
    timeline.rows
      .filter((row) => detail.verbose || row.tone !== "quiet")
      .flatMap((row): Array<ReadonlyArray<Cell>> => [
        [
          `+${format.duration(row.offset)}`,
          row.step === "" ? "·" : row.step,
          row.took === undefined ? "" : format.duration(row.took),
          { text: row.text, paint: paint(row.tone, globals.style) }
        ],
        ...(detail.verbose
          ? row.details.map((d): ReadonlyArray<Cell> => ["", "", "", { text: detail.full ? d : format.clip(d), paint: globals.style.dim }])
          : [])
      ]),
    globals
  )

const steps = (timeline: Timeline.Timeline, globals: GlobalsService) =>
  table(
    [
      { header: "STEP", flex: true },
      { header: "STATE" },
      { header: "ATTEMPTS", align: "right" },
      { header: "TOKENS IN", align: "right" },
      { header: "TOKENS OUT", align: "right" },
      { header: "SERVED", align: "right" }
    ],
    timeline.steps.map((s) => [
      s.stepId,
      Run.statusCell(s.state === "retrying" ? "failed" : s.state, globals.style),
      String(s.attempts),
      format.count(s.spent.inputTokens),
      format.count(s.spent.outputTokens),
      s.served > 0 ? `${s.served}×` : "-"
    ]),
    globals
  )

export const command = Command.make("show", {
  ...globalOptions,
  run: Run.argument,
  verbose: Options.boolean("verbose").pipe(
    Options.withAlias("v"),
    Options.withDescription(
      `Also show lease changes, the run's input, and each step's input hash and output JSON (bodies cut at ${format.clipAt} characters).`
    )
  ),
  full: Options.boolean("full").pipe(
    Options.withDescription("With --verbose: print inputs and outputs whole, however long.")
  )
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const run = yield* engine.getRun(args.run)
    const logged = yield* Events.read(run.runId)
    const timeline = Timeline.make(logged)
    const executions = Run.executions(logged.map((e) => e.event))
    if (globals.json) {
      return yield* Output.json({
        run: { ...Run.toJson(run), executions },
        steps: timeline.steps,
        spent: timeline.spent,
        saved: timeline.saved,
        events: logged.map(Events.toJson)
      })
    }
    // Dollars (spent, saved, wasted) come from the cost ledger: see `ledgerflow cost`.
    const totals = fields([
      ["spent", `${format.tokens(timeline.spent)} tokens, over every attempt`],
      [
        "saved",
        timeline.steps.some((s) => s.served > 0)
          ? `${format.tokens(timeline.saved)} tokens, by completions served from the log`
          : "nothing yet: no completion has been served from the log"
      ]
    ], globals)
    yield* Output.lines([
      ...header(run, timeline, executions, globals),
      "",
      ...events(timeline, { verbose: args.verbose || args.full, full: args.full }, globals),
      ...(timeline.steps.length > 0 ? ["", ...steps(timeline, globals)] : []),
      "",
      ...totals
    ])
  }))).pipe(Command.withDescription(describe(
    "Show a run's timeline: each step's attempts with their classification (transient or deterministic) and reason, retry delays, token usage, completions served from the log instead of re-run, compensations, and the outcome; then a summary per step.",
    [
      { command: "ledgerflow show run_0m8x2k", does: "the timeline of the run whose id starts with run_0m8x2k" },
      { command: "ledgerflow show run_0m8x2k --verbose", does: "with each step's input hash and output JSON" },
      { command: "ledgerflow show run_0m8x2k --verbose --full", does: "with long outputs printed whole" },
      { command: "ledgerflow show run_0m8x2k --json | jq .steps", does: "each step's attempts, state and tokens, as JSON" }
    ],
    ["Times are offsets from the run's start. --json prints one object: the run, its steps, tokens spent and saved, and its events (as `ledgerflow export` writes them)."]
  )))
