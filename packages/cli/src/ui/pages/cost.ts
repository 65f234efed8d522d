/**
 * The cost page: `ledgerflow cost` in a browser — the same report (`CostLedger.report`), grouped by step,
 * model, pipeline, key or run over a period, as charts and the same table, with drift and findings.
 */
import { CostLedger } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import { percent, usd } from "../../commands/cost.js"
import * as format from "../../internal/format.js"
import * as Charts from "../charts.js"
import { html } from "../html.js"
import { page } from "../layout.js"
import * as Query from "../query.js"

export const parameters = ["by", "pipeline", "since"] as const

const groupings = ["step", "model", "pipeline", "key", "run"] as const

/** The figures a report splits the money into, as `ledgerflow cost` does. */
const measures: ReadonlyArray<{
  readonly key: string
  readonly label: string
  readonly tone: "info" | "ok" | "warn" | "fail"
  readonly colour: string
  readonly of: (row: Pick<CostLedger.Row, "spent" | "saved" | "held" | "wasted">) => CostLedger.Tally
  readonly what: string
}> = [
  { key: "spent", label: "Spent", tone: "info", colour: "#0969da", of: (r) => r.spent, what: "every attempt's usage: the bill" },
  { key: "saved", label: "Saved", tone: "ok", colour: "#1a7f37", of: (r) => r.saved, what: "served from the log instead of paid again" },
  { key: "held", label: "Held", tone: "warn", colour: "#9a6700", of: (r) => r.held, what: "paid by failed runs, kept for a resume" },
  { key: "wasted", label: "Wasted", tone: "fail", colour: "#cf222e", of: (r) => r.wasted, what: "paid results thrown away" }
]

export const render = (q: Readonly<Record<string, string>>, store: string): Query.Page =>
  Effect.gen(function*() {
    const by = (yield* Query.choice("by", q["by"], groupings)) ?? "step"
    const since = yield* Query.since(q["since"])
    const pipeline = q["pipeline"]
    const report = yield* CostLedger.report({ by, since, pipeline })
    const t = report.totals
    const top = report.rows[0]
    const period = since !== undefined ? `since ${format.time(since)}` : "all time"
    const form = html`<form class="filters" method="get" action="/cost" aria-label="Cost report options">
<label>Group by<select name="by">${groupings.map((g) => html`<option value="${g}"${g === by ? " selected" : ""}>${g}</option>`)}</select></label>
<label>Pipeline<input name="pipeline" value="${pipeline ?? ""}" placeholder="any"></label>
<label>Since<input name="since" value="${q["since"] ?? ""}" placeholder="7d, 2025-01-31"></label>
<button type="submit">Show</button>
</form>`
    const cli = ["ledgerflow cost", ...(by !== "step" ? [`--by ${by}`] : []), ...(pipeline !== undefined ? [`--pipeline ${pipeline}`] : []), ...(q["since"] !== undefined ? [`--since ${q["since"]}`] : [])].join(" ")
    const body = report.rows.length === 0
      ? html`<h1>Cost</h1>${form}<p class="empty">No usage recorded ${since !== undefined ? `since ${format.time(since)}` : "yet"}.</p>`
      : html`<h1>Cost by ${by}</h1>
<p class="lead">${period}${pipeline !== undefined ? `, pipeline ${pipeline}` : ""} · ${report.runs} runs · prices as of ${report.pricesAsOf} · the numbers of <code>${cli}</code></p>
${form}
<div class="cards">
${
        measures.map((m) =>
          html`<div class="card ${m.tone}" data-measure="${m.key}"><div class="label">${m.label}</div><div class="value">${usd(m.of(t).usd)}</div><div class="sub">${
            format.count(m.of(t).calls)
          } calls · ${format.count(m.of(t).inputTokens)} in / ${format.count(m.of(t).outputTokens)} out</div><div class="sub">${m.what}</div></div>`
        )
      }
</div>
${
        top !== undefined
          ? html`<p class="panel" id="top-share"><strong>${top.group}</strong>: ${percent(top.share.inputTokens)} of input tokens, ${
            percent(top.share.usd)
          } of dollars spent.</p>`
          : ""
      }
<h2>Share of input tokens</h2>
${
        Charts.shares({
          title: `Each ${by}'s share of the input tokens spent`,
          parts: report.rows.map((r) => ({ label: r.group, share: r.share.inputTokens, text: percent(r.share.inputTokens) }))
        })
      }
<h2>Dollars by ${by}</h2>
${
        Charts.bars({
          title: `Spent, saved, held and wasted dollars by ${by}`,
          description: report.rows.map((r) => `${r.group}: ${measures.map((m) => `${m.key} ${usd(m.of(r).usd)}`).join(", ")}`).join("; "),
          series: measures.map((m) => ({ key: m.key, label: m.label, colour: m.colour })),
          rows: report.rows.map((r) => ({
            label: r.group,
            values: Object.fromEntries(measures.map((m) => [m.key, { value: m.of(r).usd, text: usd(m.of(r).usd) }]))
          }))
        })
      }
<h2>Table</h2>
<div class="scroll"><table id="cost-table">
<thead><tr><th scope="col">${by}</th><th scope="col" class="num">Spent</th><th scope="col" class="num">In tokens</th><th scope="col" class="num">Out tokens</th><th scope="col" class="num">Share</th>${
        measures.slice(1).map((m) => html`<th scope="col" class="num">${m.label}</th>`)
      }</tr></thead>
<tbody>
${
        report.rows.map((r) =>
          html`<tr data-group="${r.group}"><th scope="row">${by === "run" ? html`<a class="mono" href="/runs/${r.group}">${r.group}</a>` : r.group}${
            r.unpriced.length > 0 ? ` (unpriced: ${r.unpriced.join(", ")})` : ""
          }</th><td class="num">${usd(r.spent.usd)}</td><td class="num">${format.count(r.spent.inputTokens)}</td><td class="num">${
            format.count(r.spent.outputTokens)
          }</td><td class="num">${percent(r.share.inputTokens)}</td>${
            measures.slice(1).map((m) => html`<td class="num ${m.of(r).usd > 0 ? m.tone : ""}">${usd(m.of(r).usd)}</td>`)
          }</tr>`
        )
      }
<tr class="total"><th scope="row">total</th><td class="num">${usd(t.spent.usd)}</td><td class="num">${format.count(t.spent.inputTokens)}</td><td class="num">${
        format.count(t.spent.outputTokens)
      }</td><td class="num">100%</td>${measures.slice(1).map((m) => html`<td class="num">${usd(m.of(t).usd)}</td>`)}</tr>
</tbody>
</table></div>
${
        report.holding.length > 0
          ? html`<h2>Held by failed runs</h2>
<p>Paid completions that a resume would serve for nothing; a rollback or a cancel turns them into waste.</p>
<ul class="holding">${
            report.holding.map((h) =>
              html`<li><a class="mono" href="/runs/${h.runId}">${h.runId}</a> ${h.pipeline} (key <span class="mono">${h.key}</span>, ${h.status}): ${
                usd(h.held.usd)
              } held · <code>ledgerflow resume ${h.runId}</code> or <code>ledgerflow rollback ${h.runId}</code></li>`
            )
          }</ul>`
          : ""
      }
${t.unpriced.length > 0 ? html`<p>Unpriced models (tokens counted, dollars not): ${t.unpriced.join(", ")}.</p>` : ""}
<h2>Findings</h2>
${
        report.findings.length === 0 && report.drift.length === 0
          ? html`<p class="quiet">None: no step went over its context ceiling and no structured reply drifted.</p>`
          : html`${
            report.findings.map((f) =>
              html`<p class="finding"><strong>${f.pipeline}/${f.step}</strong> ${f.kind} ×${f.count}: ${f.worst.message}</p>`
            )
          }${
            report.drift.map((d) =>
              html`<p class="finding"><strong>${d.pipeline}/${d.step}</strong> drift ×${d.count}: <code>${d.fingerprint}</code> (wasted ${
                usd(d.wasted.usd)
              })</p>`
            )
          }`
      }`
    return page({ title: "Cost", section: "cost", store, body })
  })

