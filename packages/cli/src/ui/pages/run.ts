/**
 * A run's page: `ledgerflow show` in a browser. Its timeline (steps and attempts on a time axis), each
 * step's attempts, tokens and dollars, what the run spent, saved and wasted (the cost ledger, scoped to
 * the run), the events with their JSON on demand, and the commands that resume, roll back or replay it.
 */
import { CostLedger, Engine, type EventStore } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import { usd } from "../../commands/cost.js"
import * as Events from "../../internal/events.js"
import * as format from "../../internal/format.js"
import * as Run from "../../internal/run.js"
import * as Timeline from "../../internal/timeline.js"
import * as Gantt from "../gantt.js"
import { html, type Html } from "../html.js"
import { badge, page, statusTone } from "../layout.js"
import type * as Query from "../query.js"

const active = (status: string) => status === "running" || status === "compensating"

/** What a person can do next with this run, as the commands to type. */
const commands = (run: EventStore.RunRecord, pastPivot: string | undefined): Html => {
  const id = run.runId
  const lines: Array<Html> = []
  // What `Engine.resume` takes up again: a failed, rolled-back or stuck run.
  if (run.status === "failed" || run.status === "needs_attention" || run.status === "rolled_back") {
    lines.push(html`<p>Finish it after a fix — completed steps are served from the log, not paid again:</p><pre>ledgerflow resume ${id}</pre>`)
  }
  if (run.status === "failed" || run.status === "needs_attention") {
    lines.push(
      pastPivot !== undefined
        ? html`<p>Roll back is refused: the run is past its pivot (the irreversible <code>${pastPivot}</code> completed); it can only go forward.</p>`
        : html`<p>Or undo it — run the pending compensations of its completed steps:</p><pre>ledgerflow rollback ${id}</pre>`
    )
  }
  lines.push(html`<p>Check the pipeline's code against the log (no side effects):</p><pre>ledgerflow replay ${id}</pre>`)
  lines.push(html`<p>The same timeline in the terminal:</p><pre>ledgerflow show ${id} --verbose</pre>`)
  return html`<section class="panel commands" aria-labelledby="commands-h"><h2 id="commands-h">Commands</h2>${lines}</section>`
}

const tally = (t: CostLedger.Tally): string => `${usd(t.usd)} · ${format.count(t.inputTokens)} in / ${format.count(t.outputTokens)} out`

export const render = (runIdOrPrefix: string, store: string): Query.Page =>
  Effect.gen(function*() {
    const engine = yield* Engine.Engine
    const run = yield* engine.getRun(runIdOrPrefix)
    const logged = yield* Events.read(run.runId)
    const timeline = Timeline.make(logged)
    const report = yield* CostLedger.report({ by: "step", runId: run.runId })
    const costOf = new Map(report.rows.map((r) => [r.group, r]))
    const stepCost = (s: Timeline.StepSummary) => costOf.get(`${run.pipeline}/${s.name}`)
    const sameName = (s: Timeline.StepSummary) => timeline.steps.filter((o) => o.name === s.name).length
    const dollars = (s: Timeline.StepSummary) => {
      const row = stepCost(s)
      if (row === undefined) return "–"
      const n = sameName(s)
      return `${usd(row.spent.usd)}${n > 1 ? ` (all ${n} ${s.name})` : ""}`
    }
    const irreversible = new Set(logged.flatMap(({ event }) => (event._tag === "StepStarted" ? [event.stepId] : [])))
    const pivot = logged.find(({ event }) => event._tag === "StepCompleted" && irreversible.has(event.stepId))
    const pastPivot = pivot?.event._tag === "StepCompleted" ? pivot.event.stepId : undefined
    const lanes = timeline.steps.map((s): Gantt.Lane => ({
      stepId: s.stepId,
      note: `${s.attempts} attempt${s.attempts === 1 ? "" : "s"}${s.served > 0 ? ` · served ${s.served}×` : ""}${
        Timeline.hasTokens(s.spent) ? ` · ${format.count(s.spent.inputTokens)} in` : ""
      }${stepCost(s) !== undefined && stepCost(s)!.spent.usd > 0 ? ` · ${usd(stepCost(s)!.spent.usd)}` : ""}`
    }))
    const t = report.totals
    const failure = run.failureReason !== undefined && run.status !== "completed"
      ? html`<dt>Failure</dt><dd>${run.failureReason}</dd>`
      : ""
    const body = html`<h1>Run <span class="mono">${run.runId}</span> ${badge(Run.statusText(run), statusTone(run.status))}</h1>
<dl class="facts">
<dt>Pipeline</dt><dd>${Run.label(run)}</dd>
<dt>Key</dt><dd class="mono">${run.key}</dd>
${failure}
<dt>Created</dt><dd><time datetime="${new Date(run.createdAt).toISOString()}">${format.time(run.createdAt)}</time></dd>
<dt>Updated</dt><dd><time datetime="${new Date(run.updatedAt).toISOString()}">${format.time(run.updatedAt)}</time></dd>
${run.parentRunId !== undefined ? html`<dt>Parent</dt><dd><a class="mono" href="/runs/${run.parentRunId}">${run.parentRunId}</a></dd>` : ""}
${run.correlationId !== undefined ? html`<dt>Correlation</dt><dd class="mono">${run.correlationId}</dd>` : ""}
${pastPivot !== undefined ? html`<dt>Pivot</dt><dd>past it: the irreversible <code>${pastPivot}</code> completed</dd>` : ""}
</dl>
<div class="cards" aria-label="What the run cost">
<div class="card info"><div class="label">Spent</div><div class="value">${usd(t.spent.usd)}</div><div class="sub">${format.count(t.spent.calls)} paid calls · ${format.count(t.spent.inputTokens)} in</div></div>
<div class="card ok"><div class="label">Saved</div><div class="value">${usd(t.saved.usd)}</div><div class="sub">${format.count(t.saved.calls)} served from the log</div></div>
<div class="card fail"><div class="label">Wasted</div><div class="value">${usd(t.wasted.usd)}</div><div class="sub">${format.count(t.wasted.calls)} paid results thrown away</div></div>
</div>
<h2>Timeline</h2>
${lanes.length > 0 ? Gantt.make(logged, lanes, timeline.rows) : html`<p class="empty">No step has run yet.</p>`}
${commands(run, pastPivot)}
<h2>Steps</h2>
<div class="scroll"><table>
<thead><tr><th scope="col">Step</th><th scope="col">State</th><th scope="col" class="num">Attempts</th><th scope="col" class="num">Failed</th><th scope="col" class="num">Tokens in</th><th scope="col" class="num">Tokens out</th><th scope="col" class="num">Spent</th><th scope="col" class="num">Served</th><th scope="col">Last failure</th></tr></thead>
<tbody>
${
      timeline.steps.map((s) =>
        html`<tr data-step="${s.stepId}"><th scope="row" class="mono">${s.stepId}${irreversible.has(s.stepId) ? " ⚑" : ""}</th><td>${
          badge(s.state, s.state === "completed" ? "ok" : s.state === "retrying" || s.state.startsWith("compensat") ? "warn" : "fail")
        }</td><td class="num">${s.attempts}</td><td class="num">${s.failures}</td><td class="num">${
          format.count(s.spent.inputTokens)
        }</td><td class="num">${format.count(s.spent.outputTokens)}</td><td class="num">${dollars(s)}</td><td class="num">${
          s.served > 0 ? `${s.served}×` : "–"
        }</td><td>${s.lastFailure !== undefined ? `${s.lastFailure.classification}: ${s.lastFailure.reason}` : ""}</td></tr>`
      )
    }
</tbody>
</table></div>
<p>Tokens: spent ${format.tokens(timeline.spent)} over every attempt; saved ${format.tokens(timeline.saved)} by completions served from the log. Dollars: spent ${tally(t.spent)}; saved ${tally(t.saved)}; wasted ${tally(t.wasted)}.</p>
<h2>Events</h2>
<div class="scroll"><table>
<thead><tr><th scope="col" class="num">Seq</th><th scope="col" class="num">Time</th><th scope="col">Step</th><th scope="col" class="num">Took</th><th scope="col">Event</th></tr></thead>
<tbody>
${
      timeline.rows.map((row) =>
        html`<tr class="event ${row.tone}"><td class="num">${row.seq}</td><td class="num">+${format.duration(row.offset)}</td><td class="mono">${
          row.step === "" ? "·" : row.step
        }</td><td class="num">${row.took === undefined ? "" : format.duration(row.took)}</td><td><span class="${row.tone}">${row.text}</span>${
          row.details.length > 0
            ? html`<details id="ev-${row.seq}"><summary>JSON</summary><pre>${row.details.join("\n")}</pre></details>`
            : ""
        }</td></tr>`
      )
    }
</tbody>
</table></div>
${active(run.status) ? html`<p class="live" aria-live="polite">This run is ${run.status}: the page refreshes itself.</p>` : ""}`
    return page({
      title: `Run ${run.runId}`,
      section: "runs",
      store,
      body,
      liveSince: active(run.status) ? run.updatedAt + 1 : undefined
    })
  })
