/**
 * `ledgerflow runs`: the runs in the store, newest first, filtered by status, pipeline, key and time.
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Engine, EventStore } from "@ledgerflow/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as format from "../internal/format.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { table } from "../internal/render.js"
import * as Run from "../internal/run.js"
import * as Since from "../internal/since.js"
import * as Store from "../internal/store.js"

const defaultLimit = 50

export const limit = (what: string, fallback: number) =>
  Options.integer("limit").pipe(
    Options.withPseudoName("N"),
    Options.withDescription(`At most N ${what} (default ${fallback}; 0 for all).`),
    Options.mapEffect((n) =>
      n >= 0 ? Effect.succeed(n) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--limit takes 0 or more; got ${n}`)))
    ),
    Options.withDefault(fallback)
  )

export const command = Command.make("runs", {
  ...globalOptions,
  status: Options.choice("status", EventStore.RunStatus.literals).pipe(
    Options.withDescription("Only runs in this state."),
    Options.optional
  ),
  pipeline: Options.text("pipeline").pipe(
    Options.withPseudoName("NAME"),
    Options.withDescription("Only runs of this pipeline."),
    Options.optional
  ),
  key: Options.text("key").pipe(
    Options.withPseudoName("KEY"),
    Options.withDescription("Only the run with this idempotency key."),
    Options.optional
  ),
  since: Since.option("runs updated"),
  limit: limit("runs, newest first", defaultLimit)
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const found = yield* engine.runs({
      status: Option.getOrUndefined(args.status),
      pipeline: Option.getOrUndefined(args.pipeline),
      key: Option.getOrUndefined(args.key),
      since: Option.getOrUndefined(args.since),
      // One more than asked tells whether there are more.
      limit: args.limit === 0 ? undefined : args.limit + 1
    })
    const shown = args.limit === 0 ? found : found.slice(0, args.limit)
    if (globals.json) return yield* Output.ndjson(shown.map(Run.toJson))
    if (shown.length === 0) return yield* Output.note("no runs match")
    const now = yield* Clock.currentTimeMillis
    yield* Output.lines(table(
      [
        { header: "RUN", keep: true },
        { header: "STATUS" },
        { header: "PIPELINE", max: 24 },
        { header: "KEY", flex: true },
        { header: "DELIVERIES", align: "right" },
        { header: "AGE", align: "right", min: 3 }
      ],
      shown.map((run) => [
        run.runId,
        Run.statusCell(run.status, globals.style),
        Run.label(run),
        run.key,
        String(run.deliveries),
        format.age(now - run.updatedAt)
      ]),
      globals
    ))
    if (found.length > shown.length) {
      yield* Output.note(`showing the ${shown.length} most recent runs; --limit N shows more, --limit 0 all`)
    }
  }))).pipe(Command.withDescription(describe(
    "List the runs in the store, newest first: id, status, pipeline and version, key, how many times it was started by key (DELIVERIES: a redelivery of a finished or failed key executes nothing), and how long ago it last changed (AGE). `ledgerflow failures` groups the failed ones by cause.",
    [
      { command: "ledgerflow runs", does: "the 50 most recent runs" },
      { command: "ledgerflow runs --status failed --since 2h", does: "what failed in the last two hours" },
      { command: "ledgerflow runs --pipeline ad-report --json | jq -r .runId", does: "run ids of one pipeline, one a line" }
    ],
    ["--json prints one JSON object a line (NDJSON), every field of the run, times in epoch milliseconds."]
  )))
