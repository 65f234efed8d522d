/**
 * `ledgerflow cost`: where the money went — spent (every attempt), saved (completions served from the log
 * instead of re-run) and wasted (attempts whose paid result was thrown away), grouped by pipeline, step,
 * model, key or run; with each group's share ("summarize: 58% of input tokens"), drift and findings.
 */
import { Command, Options } from "@effect/cli"
import { CostLedger, Pricing } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as format from "../internal/format.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import * as Prices from "../internal/prices.js"
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
    const prices = yield* Prices.fromConfig(globals)
    const report = yield* CostLedger.report({
      by: args.by,
      since: Option.getOrUndefined(args.since),
      pipeline: Option.getOrUndefined(args.pipeline)
    }).pipe(prices === undefined ? (e) => e : Effect.provideService(Pricing.Pricing, prices))
    if (globals.json) {
      const money = Prices.json
      return yield* Output.ndjson([
        ...report.rows.map(({ held, saved, spent, wasted, ...row }) => ({
          record: "row",
          by: report.by,
          ...row,
          spent: money(spent),
          saved: money(saved),
          held: money(held),
          wasted: money(wasted)
        })),
        {
          record: "totals",
          by: report.by,
          pricesAsOf: report.pricesAsOf,
          runs: report.runs,
          ...report.totals,
          spent: money(report.totals.spent),
          saved: money(report.totals.saved),
          held: money(report.totals.held),
          wasted: money(report.totals.wasted)
        },
        ...report.holding.map((h) => ({ record: "holding", ...h, held: money(h.held) })),
        ...report.drift.map((d) => ({ record: "drift", ...d, wasted: money(d.wasted) })),
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
        { header: "HELD", align: "right" },
        { header: "WASTED", align: "right" }
      ],
      [
        ...report.rows.map((row) => [
          row.unpriced.length > 0 ? `${row.group} (unpriced: ${row.unpriced.join(", ")})` : row.group,
          usd(row.spent.usd),
          format.count(row.spent.inputTokens),
          percent(row.share.inputTokens),
          { text: usd(row.saved.usd), paint: row.saved.usd > 0 ? style.green : (s: string) => s },
          { text: usd(row.held.usd), paint: row.held.usd > 0 ? style.yellow : (s: string) => s },
          { text: usd(row.wasted.usd), paint: row.wasted.usd > 0 ? style.red : (s: string) => s }
        ]),
        [
          { text: "total", paint: style.bold },
          usd(t.spent.usd),
          format.count(t.spent.inputTokens),
          "100%",
          usd(t.saved.usd),
          usd(t.held.usd),
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
      ...(report.holding.length === 0 ? [] : [
        `held ${usd(t.held.usd)} (${format.count(t.held.calls)} paid calls) by ${report.holding.length} failed run${
          report.holding.length === 1 ? "" : "s"
        }: ${report.holding.slice(0, 3).map((h) => `${h.runId} (${h.pipeline}, key ${h.key}, ${usd(h.held.usd)})`).join(", ")}${
          report.holding.length > 3 ? ` +${report.holding.length - 3}` : ""
        }; \`ledgerflow resume <run>\` after a fix uses it, \`ledgerflow rollback <run>\` gives it up.`
      ]),
      ...(t.unpriced.length > 0 ? [`Unpriced models (tokens counted, dollars not): ${t.unpriced.join(", ")}.`] : []),
      ...report.drift.map((d) =>
        `drift  ${d.pipeline}/${d.step} ×${d.count}: ${d.fingerprint} (wasted ${usd(d.wasted.usd)})`
      ),
      ...report.findings.map((f) => `finding  ${f.pipeline}/${f.step} ${f.kind} ×${f.count}: ${f.worst.message}`)
    ])
  }))).pipe(Command.withDescription(describe(
    "Spent, saved, held and wasted tokens and dollars, projected from the event log. Spent: every attempt's usage. Saved: completions served from the log (a retry, a resume) instead of paid again, and what each redelivery of a finished or failed key did not pay again. Held: paid completions of failed runs that nothing has used yet (a resume would serve them; the runs are named). Wasted: attempts whose paid result was thrown away (failed attempts, drifted replies, work undone by a rollback, a cancelled run's).",
    [
      { command: "ledgerflow cost", does: "by step: which step eats the tokens" },
      { command: "ledgerflow cost --by model --since 7d", does: "the last week, by model" },
      { command: "ledgerflow cost --by run --pipeline ad-report --json", does: "one pipeline's runs, as NDJSON" }
    ],
    [
      "Prices are per model per million tokens: Pricing.defaultTable, or with --config the config's table (its `prices` export, a Pricing.PriceTable such as `Pricing.make({ models })`, else the `Pricing` its `layer` provides). A model without a price is listed as unpriced, never counted as $0.",
      "--json prints one object a line, its `record` field saying what it is: a row (with `pipeline`, `step`, `model`, `key` or `runId` as fields, by what it groups), the totals, the runs holding money, drift and findings. Money is an exact decimal string of US dollars (`\"usd\": \"0.085692\"`), never a float."
    ]
  )))
