/**
 * The failures page: `ledgerflow failures` in a browser — failing runs grouped by fingerprint (×N), and
 * each pipeline's storm breaker as `ledgerflow breaker list` reports it (which needs the pipelines' code).
 */
import { Engine } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { group, occurrence } from "../../commands/failures.js"
import * as format from "../../internal/format.js"
import { html, type Html } from "../html.js"
import { badge, page } from "../layout.js"
import * as Query from "../query.js"

export const parameters = ["pipeline", "since"] as const

export interface Breaker {
  readonly pipeline: string
  readonly version: string
  readonly state: "closed" | "open" | "off"
  readonly why: string
}

/** The breakers of the config's pipelines, or why they cannot be known (no config here). */
export type Breakers = Either.Either<ReadonlyArray<Breaker>, string>

const breakerTable = (breakers: Breakers): Html =>
  Either.match(breakers, {
    onLeft: (why) =>
      html`<p class="panel">The breakers' states need the pipelines' code, which this view could not load: ${why}. Start <code>ledgerflow ui</code> where <code>ledgerflow.config.ts</code> is, or pass <code>--config PATH</code>.</p>`,
    onRight: (list) =>
      html`<div class="scroll"><table id="breakers">
<thead><tr><th scope="col">Pipeline</th><th scope="col">Breaker</th><th scope="col">Why</th></tr></thead>
<tbody>${
        list.map((b) =>
          html`<tr data-pipeline="${b.pipeline}"><th scope="row">${b.pipeline}@${b.version}</th><td>${
            badge(b.state, b.state === "open" ? "fail" : b.state === "closed" ? "ok" : "quiet")
          }</td><td>${b.why}${b.state === "open" ? html` — <code>ledgerflow breaker reset ${b.pipeline}</code> once fixed` : ""}</td></tr>`
        )
      }</tbody></table></div>`
  })

export const render = (q: Readonly<Record<string, string>>, store: string, breakers: Effect.Effect<Breakers>): Query.Page =>
  Effect.gen(function*() {
    const since = yield* Query.since(q["since"])
    const pipeline = q["pipeline"]
    const engine = yield* Engine.Engine
    const runs = yield* engine.runs({ pipeline, since })
    const failing = runs.filter((r) => r.failureFingerprint !== undefined && r.status !== "completed")
    const occurrences = yield* Effect.forEach(failing, occurrence)
    const groups = group(occurrences.filter((o) => since === undefined || o.at >= since))
    const states = yield* breakers
    const body = html`<h1>Failures</h1>
<p class="lead">Failing runs grouped by fingerprint, most frequent first — the list of <code>ledgerflow failures</code>. A run resumed to completion no longer counts.</p>
<form class="filters" method="get" action="/failures" aria-label="Filter failures">
<label>Pipeline<input name="pipeline" value="${pipeline ?? ""}" placeholder="any"></label>
<label>Since<input name="since" value="${q["since"] ?? ""}" placeholder="1d, 2025-01-31"></label>
<button type="submit">Filter</button>
</form>
${
      groups.length === 0
        ? html`<p class="empty">No failures.</p>`
        : groups.map((g, i) =>
          html`<section class="group" aria-labelledby="group-${i}" data-fingerprint="${g.fingerprint}">
<h3 id="group-${i}"><span class="count">×${g.count}</span> ${badge(g.classification, g.classification === "deterministic" ? "fail" : "warn")} <span>${
            g.pipelines.join(", ")
          }${g.steps.length > 0 ? ` · ${g.steps.join(", ")}` : ""}</span></h3>
<p>${g.reason}${g.rule !== null && !g.reason.includes(g.rule) ? html` <span class="quiet">(rule ${g.rule})</span>` : ""}</p>
<p class="quiet">first ${format.time(g.firstSeen)} · last ${format.time(g.lastSeen)}</p>
<details><summary>${g.runIds.length} run${g.runIds.length === 1 ? "" : "s"}</summary><ul>${
            g.runIds.map((id) => html`<li><a class="mono" href="/runs/${id}">${id}</a></li>`)
          }</ul></details>
<p class="quiet mono">fingerprint ${g.fingerprint}</p>
</section>`
        )
    }
<h2>Storm breakers</h2>
${breakerTable(states)}`
    return page({ title: "Failures", section: "failures", store, body })
  })
