/**
 * `ledgerflow cost`: where the money went — spent (every attempt), saved (completions served from the log
 * instead of re-run) and wasted (attempts whose paid result was thrown away), grouped by pipeline, step,
 * model, key or run; with each group's share ("summarize: 58% of input tokens"), drift and findings.
 */
import { Command, Options } from "@effect/cli"
import { CostLedger } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as format from "../internal/format.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import { table } from "../internal/render.js"
import * as Since from "../internal/since.js"
import * as Store from "../internal/store.js"

export const usd = (n: number): string => (n === 0 ? "$0" : n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`)
export const percent = (share: number): string => `${Math.round(share * 100)}%`

export const command = Command.make("cost", {
  ...globalOptions,
  by: Options.choice("by", ["pipeline", "step", "model", "key", "run"] as const).pipe(
    Options.withDescription("Group by this (default: step)."),
    Options.withDefault("step" as const)
  ),
  pipeline: Options.text("pipeline").pipe(
    Options.withPseudoName("NAME"),
    Options.withDescription("Only this pipeline's runs."),
    Options.optional
  ),
  since: Since.option("spending")
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const report = yield* CostLedger.report({
      by: args.by,
      since: Option.getOrUndefined(args.since),
      pipeline: Option.getOrUndefined(args.pipeline)
    })
    if (globals.json) {
      return yield* Output.ndjson([
        ...report.rows.map((row) => ({ record: "row", by: report.by, ...row })),
        { record: "totals", by: report.by, pricesAsOf: report.pricesAsOf, runs: report.runs, ...report.totals },
        ...report.drift.map((d) => ({ record: "drift", ...d })),
        ...report.findings.map((f) => ({ record: "finding", ...f }))
      ])
    }
    if (report.rows.length === 0) return yield* Output.note("no usage recorded yet")
    const { style, width } = globals
    const t = report.totals
    const lines = table(
      [
        { header: args.by.toUpperCase(), flex: true },
        { header: "SPENT", align: "right" },
        { header: "IN TOKENS", align: "right" },
        { header: "SHARE", align: "right" },
        { header: "SAVED", align: "right" },
        { header: "WASTED", align: "right" }
      ],
      [
        ...report.rows.map((row) => [
          row.unpriced.length > 0 ? `${row.group} (unpriced: ${row.unpriced.join(", ")})` : row.group,
          usd(row.spent.usd),
          format.count(row.spent.inputTokens),
          percent(row.share.inputTokens),
          { text: usd(row.saved.usd), paint: row.saved.usd > 0 ? style.green : (s: string) => s },
          { text: usd(row.wasted.usd), paint: row.wasted.usd > 0 ? style.red : (s: string) => s }
        ]),
        [
          { text: "total", paint: style.bold },
          usd(t.spent.usd),
          format.count(t.spent.inputTokens),
          "100%",
          usd(t.saved.usd),
          usd(t.wasted.usd)
        ]
      ],
      { width, style }
    )
    const top = report.rows[0]
    yield* Output.lines([
      ...lines,
      "",
      ...(top === undefined ? [] : [
        `${top.group}: ${percent(top.share.inputTokens)} of input tokens, ${percent(top.share.usd)} of dollars spent.`
      ]),
      `${format.count(t.spent.calls)} paid calls; ${format.count(t.saved.calls)} served from the log instead (saved ${
        usd(t.saved.usd)
      }); ${format.count(t.wasted.calls)} wasted (${usd(t.wasted.usd)}). ${report.runs} runs; prices as of ${report.pricesAsOf}.`,
      ...(t.unpriced.length > 0 ? [`Unpriced models (tokens counted, dollars not): ${t.unpriced.join(", ")}.`] : []),
      ...report.drift.map((d) =>
        `drift  ${d.pipeline}/${d.step} ×${d.count}: ${d.fingerprint} (wasted ${usd(d.wasted.usd)})`
      ),
      ...report.findings.map((f) => `finding  ${f.pipeline}/${f.step} ${f.kind} ×${f.count}: ${f.worst.message}`)
    ])
  }))).pipe(Command.withDescription(describe(
    "Spent, saved and wasted tokens and dollars, projected from the event log. Spent: every attempt's usage. Saved: completions served from the log (a retry, a resume) instead of paid again. Wasted: attempts whose paid result was thrown away (failed attempts, drifted replies, work undone by a rollback).",
    [
      { command: "ledgerflow cost", does: "by step: which step eats the tokens" },
      { command: "ledgerflow cost --by model --since 7d", does: "the last week, by model" },
      { command: "ledgerflow cost --by run --pipeline ad-report --json", does: "one pipeline's runs, as NDJSON" }
    ],
    ["Prices are per model per million tokens (Pricing.defaultTable, overridable); a model without a price is listed as unpriced, never counted as $0. --json prints one object a line, its `record` field saying what it is: a row, then the totals, then drift and findings."]
  )))
