/**
 * The runs page: `ledgerflow runs` in a browser — the same filters (status, pipeline, key, since), newest
 * first, a page at a time, with what each run spent, saved and wasted (from the cost ledger, as
 * `ledgerflow cost --by run` reports it). Refreshes itself while runs change.
 */
import { CostLedger, Engine, EventStore } from "@ledgerflow/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { usd } from "../../commands/cost.js"
import * as format from "../../internal/format.js"
import * as Run from "../../internal/run.js"
import { html, type Html, type Part, query } from "../html.js"
import { badge, page, statusTone } from "../layout.js"
import * as Query from "../query.js"

export const defaultLimit = 50

export const parameters = ["status", "pipeline", "key", "since", "limit", "page"] as const

interface Row {
  readonly run: EventStore.RunRecord
  readonly cost: CostLedger.Row | undefined
  readonly now: number
}

interface Column {
  readonly header: string
  readonly numeric?: boolean
  readonly cell: (row: Row) => Part
}

const money = (row: Row, of: (r: CostLedger.Row) => CostLedger.Tally): string =>
  row.cost === undefined ? "–" : usd(of(row.cost).usd)

/**
 * The table's columns. A new figure of the run projection is one more entry here.
 */
const columns: ReadonlyArray<Column> = [
  { header: "Run", cell: (r) => html`<a href="/runs/${r.run.runId}" class="mono">${r.run.runId}</a>` },
  { header: "Status", cell: (r) => badge(Run.statusText(r.run), statusTone(r.run.status)) },
  { header: "Pipeline", cell: (r) => Run.label(r.run) },
  { header: "Key", cell: (r) => html`<span class="mono">${r.run.key}</span>` },
  { header: "Deliveries", numeric: true, cell: (r) => format.count(r.run.deliveries) },
  { header: "Spent", numeric: true, cell: (r) => money(r, (c) => c.spent) },
  { header: "Saved", numeric: true, cell: (r) => money(r, (c) => c.saved) },
  { header: "Held", numeric: true, cell: (r) => money(r, (c) => c.held) },
  { header: "Wasted", numeric: true, cell: (r) => money(r, (c) => c.wasted) },
  {
    header: "Updated",
    numeric: true,
    cell: (r) => html`<time datetime="${new Date(r.run.updatedAt).toISOString()}" title="${format.time(r.run.updatedAt)}">${format.age(r.now - r.run.updatedAt)} ago</time>`
  }
]

const filters = (q: Readonly<Record<string, string>>): Html =>
  html`<form class="filters" method="get" action="/" aria-label="Filter runs">
<label>Status<select name="status">
<option value="">any</option>
${EventStore.RunStatus.literals.map((s) => html`<option value="${s}"${q["status"] === s ? " selected" : ""}>${s}</option>`)}
</select></label>
<label>Pipeline<input name="pipeline" value="${q["pipeline"] ?? ""}" placeholder="any"></label>
<label>Key<input name="key" value="${q["key"] ?? ""}" placeholder="any"></label>
<label>Since<input name="since" value="${q["since"] ?? ""}" placeholder="2h, 7d, 2025-01-31"></label>
<button type="submit">Filter</button>
<a class="button secondary" href="/">Clear</a>
</form>`

export const render = (q: Readonly<Record<string, string>>, store: string): Query.Page =>
  Effect.gen(function*() {
    const status = yield* Query.choice("status", q["status"], EventStore.RunStatus.literals)
    const since = yield* Query.since(q["since"])
    const pageNo = (yield* Query.count("page", q["page"], 100_000)) ?? 1
    const pageSize = (yield* Query.count("limit", q["limit"], 1000)) ?? defaultLimit
    const engine = yield* Engine.Engine
    const now = yield* Clock.currentTimeMillis
    const pipeline = q["pipeline"]
    // One more than the page tells whether there is a next one.
    const found = yield* engine.runs({ status, pipeline, key: q["key"], since, limit: pageNo * pageSize + 1 })
    const shown = found.slice((pageNo - 1) * pageSize, pageNo * pageSize)
    const report = yield* CostLedger.report({ by: "run", pipeline })
    const costOf = new Map(report.rows.map((r) => [r.group, r]))
    const rows: ReadonlyArray<Row> = shown.map((run) => ({ run, cost: costOf.get(run.runId), now }))
    const running = shown.filter((r) => r.status === "running" || r.status === "compensating").length
    const link = (n: number) => `/${query({ ...q, page: n === 1 ? undefined : n })}`
    const filtered = Object.keys(q).some((k) => k !== "page")
    const body = html`<h1>Runs</h1>
<p class="lead">Newest first${filtered ? ", filtered" : ""}. ${running > 0 ? `${running} running on this page. ` : ""}The same list as <code>ledgerflow runs</code>.</p>
${filters(q)}
${
      shown.length === 0
        ? html`<p class="empty">${pageNo > 1 ? `No runs on page ${pageNo}.` : "No runs match."}</p>`
        : html`<div class="scroll"><table>
<caption class="skip">Runs ${(pageNo - 1) * pageSize + 1} to ${(pageNo - 1) * pageSize + shown.length}</caption>
<thead><tr>${columns.map((c) => html`<th scope="col"${c.numeric === true ? html` class="num"` : ""}>${c.header}</th>`)}</tr></thead>
<tbody>
${rows.map((r) => html`<tr>${columns.map((c) => html`<td${c.numeric === true ? html` class="num"` : ""}>${c.cell(r)}</td>`)}</tr>`)}
</tbody>
</table></div>`
    }
<nav class="pager" aria-label="Pages">
${pageNo > 1 ? html`<a class="button secondary" href="${link(pageNo - 1)}" rel="prev">← Newer</a>` : ""}
<span>Page ${pageNo}${shown.length > 0 ? `: runs ${(pageNo - 1) * pageSize + 1}–${(pageNo - 1) * pageSize + shown.length}` : ""}</span>
${found.length > pageNo * pageSize ? html`<a class="button secondary" href="${link(pageNo + 1)}" rel="next">Older →</a>` : ""}
</nav>
<p class="live" aria-live="polite">Reload to see new runs (the page refreshes itself when scripts run).</p>`
    return page({ title: "Runs", section: "runs", store, body, liveSince: now })
  })
