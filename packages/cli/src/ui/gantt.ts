/**
 * A run's timeline as an SVG: one lane per step, each attempt a bar on a shared time axis coloured by its
 * outcome (completed, failed transiently and retried, failed deterministically), the retry delays as
 * dashed lines, completions served from the log as marks, compensations, and the irreversible pivot.
 * Every mark has a <title> (hover, screen readers) and data attributes naming its step and outcome.
 */
import type { Event } from "@ledgerflow/core"
import type { LoggedEvent } from "../internal/events.js"
import * as format from "../internal/format.js"
import type * as Timeline from "../internal/timeline.js"
import { html, type Html } from "./html.js"

export interface Lane {
  readonly stepId: string
  /** A second line under the step's name: its tokens and dollars. */
  readonly note: string
}

const width = 960
const labelWidth = 260
const right = 30
const laneHeight = 44
const top = 34
const bottom = 30
const plot = width - labelWidth - right

export const colours = {
  completed: "#1a7f37",
  transient: "#d4a72c",
  deterministic: "#cf222e",
  served: "#0969da",
  compensation: "#8250df",
  run: "#59636e"
} as const

const classOf = (failure: Event.StepAttemptFailed["failure"]) => (failure._tag === "Transient" ? "transient" : "deterministic")

/**
 * The SVG for a run's events, one lane per step. `rows` is the run's timeline (`Timeline.make`): a mark's
 * title is its event's row, worded as `ledgerflow show` words it.
 */
export const make = (events: ReadonlyArray<LoggedEvent>, lanes: ReadonlyArray<Lane>, rows: ReadonlyArray<Timeline.Row>): Html => {
  const said = new Map(rows.map((r) => [r.seq, r.text]))
  const start = events[0]?.event.at ?? 0
  let end = start
  for (const { event } of events) {
    end = Math.max(end, event.at)
    if (event._tag === "StepAttemptFailed" && event.retryDelayMs !== undefined) end = Math.max(end, event.at + event.retryDelayMs)
  }
  const span = Math.max(1, end - start)
  const x = (t: number) => labelWidth + ((t - start) / span) * plot
  const laneOf = new Map(lanes.map((l, i) => [l.stepId, i]))
  const mid = (stepId: string) => top + (laneOf.get(stepId) ?? 0) * laneHeight + laneHeight / 2
  const height = top + lanes.length * laneHeight + bottom
  const irreversible = new Set(events.flatMap(({ event }) => (event._tag === "StepStarted" ? [event.stepId] : [])))
  const marks: Array<Html> = []
  const compensating = new Map<string, number>()
  let pivotDrawn = false
  const runMarks: Array<{ readonly cx: number; readonly label: string; readonly colour: string; readonly offset: number }> = []

  const bar = (stepId: string, from: number, to: number, fill: string, attrs: Html, title: string) => {
    const x0 = x(from)
    const w = Math.max(4, x(to) - x0)
    marks.push(html`<rect class="attempt" x="${x0.toFixed(1)}" y="${mid(stepId) - 9}" width="${w.toFixed(1)}" height="18" rx="3" fill="${fill}" ${attrs} tabindex="0" role="img" aria-label="${title}"><title>${title}</title></rect>`)
  }

  for (const { event, stored } of events) {
    const text = `${"stepId" in event ? `${event.stepId}: ` : ""}${said.get(stored.seq) ?? event._tag}`
    switch (event._tag) {
      case "StepAttemptFailed": {
        if (!laneOf.has(event.stepId)) break
        const cls = classOf(event.failure)
        bar(
          event.stepId,
          event.startedAt,
          event.at,
          colours[cls],
          html`data-step="${event.stepId}" data-outcome="failed" data-classification="${cls}"`,
          text
        )
        if (event.retryDelayMs !== undefined) {
          const y = mid(event.stepId)
          const x0 = x(event.at)
          const x1 = x(event.at + event.retryDelayMs)
          marks.push(html`<g class="retry" data-step="${event.stepId}"><line x1="${x0.toFixed(1)}" y1="${y}" x2="${Math.max(x0 + 6, x1).toFixed(1)}" y2="${y}" stroke="${colours.transient}" stroke-width="2" stroke-dasharray="4 3"/><text x="${((x0 + x1) / 2).toFixed(1)}" y="${y - 13}" font-size="11" text-anchor="middle" fill="#9a6700">retry ${format.duration(event.retryDelayMs)}</text><title>backoff before attempt ${event.attempt + 1}: ${format.duration(event.retryDelayMs)}</title></g>`)
        }
        break
      }
      case "StepCompleted": {
        if (!laneOf.has(event.stepId)) break
        bar(
          event.stepId,
          event.startedAt,
          event.at,
          colours.completed,
          html`data-step="${event.stepId}" data-outcome="completed"`,
          `${text} (took ${format.duration(event.at - event.startedAt)})`
        )
        if (irreversible.has(event.stepId) && !pivotDrawn) {
          pivotDrawn = true
          const px = x(event.at)
          marks.push(html`<g class="pivot" data-step="${event.stepId}"><line x1="${px.toFixed(1)}" y1="${top - 6}" x2="${px.toFixed(1)}" y2="${height - bottom}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="6 3"/><text x="${(px + 4).toFixed(1)}" y="${top - 8}" font-size="11" fill="#cf222e" font-weight="600">pivot: ${event.stepId}</text><title>the irreversible ${event.stepId} completed: earlier steps are no longer compensated; the run only goes forward</title></g>`)
        }
        break
      }
      case "StepsServed":
        for (const stepId of event.stepIds) {
          if (!laneOf.has(stepId)) continue
          const cx = x(event.at)
          const y = mid(stepId)
          const title = `${stepId} served from the log: not run again, nothing paid`
          marks.push(html`<g class="served" data-step="${stepId}" data-outcome="served" tabindex="0" role="img" aria-label="${title}"><path d="M${cx.toFixed(1)} ${y - 9} l9 9 l-9 9 l-9 -9 z" fill="#ffffff" stroke="${colours.served}" stroke-width="2.5"/><text x="${(cx > width - 80 ? cx - 13 : cx + 13).toFixed(1)}" y="${y + 4}" font-size="12" font-weight="600" text-anchor="${cx > width - 80 ? "end" : "start"}" fill="${colours.served}">served</text><title>${title}</title></g>`)
        }
        break
      case "CompensationStarted":
        compensating.set(event.stepId, event.at)
        break
      case "CompensationCompleted":
      case "CompensationFailed": {
        const from = compensating.get(event.stepId)
        if (from === undefined || !laneOf.has(event.stepId)) break
        compensating.delete(event.stepId)
        const ok = event._tag === "CompensationCompleted"
        bar(
          event.stepId,
          from,
          event.at,
          ok ? colours.compensation : colours.deterministic,
          html`data-step="${event.stepId}" data-outcome="${ok ? "compensated" : "compensation-failed"}" stroke="${colours.compensation}" stroke-width="2" fill-opacity="0.55"`,
          `${event.stepId} ${ok ? "compensated (undone)" : `compensation attempt ${event.attempt} failed: ${event._tag === "CompensationFailed" ? event.failure.reason : ""}`}`
        )
        break
      }
      case "RunStarted":
      case "RunResumed":
      case "RunCompleted":
      case "RunFailed":
      case "RunRolledBack":
      case "RunNeedsAttention":
      case "RunCancelled": {
        const label = {
          RunStarted: "started",
          RunResumed: "resumed",
          RunCompleted: "completed",
          RunFailed: "failed",
          RunRolledBack: "rolled back",
          RunNeedsAttention: "needs attention",
          RunCancelled: "cancelled"
        }[event._tag]
        const cx = x(event.at)
        const colour = event._tag === "RunFailed" || event._tag === "RunNeedsAttention"
          ? colours.deterministic
          : event._tag === "RunCompleted"
          ? colours.completed
          : colours.run
        runMarks.push({ cx, label, colour, offset: event.at - start })
        break
      }
      default:
        break
    }
  }

  // The run's own events on top. Labels are placed from the last (the outcome) back; one that would
  // overlap a placed one is left out: its mark stays, and its <title> says what it is.
  const placed: Array<readonly [number, number]> = []
  const runLayer = [...runMarks].reverse().map((m) => {
    const textWidth = (m.label.length + 4) * 6.2
    const end = m.cx > width - right - textWidth
    const extent: readonly [number, number] = end ? [m.cx - 6 - textWidth, m.cx - 6] : [m.cx + 6, m.cx + 6 + textWidth]
    const free = placed.every(([a, b]) => extent[1] < a - 4 || extent[0] > b + 4)
    if (free) placed.push(extent)
    return html`<g class="run-event" data-event="${m.label}"><line x1="${m.cx.toFixed(1)}" y1="${top - 4}" x2="${m.cx.toFixed(1)}" y2="${height - bottom}" stroke="${m.colour}" stroke-opacity="0.35"/><circle cx="${m.cx.toFixed(1)}" cy="${top - 4}" r="4" fill="${m.colour}"/>${
      free
        ? html`<text x="${(end ? m.cx - 6 : m.cx + 6).toFixed(1)}" y="${top - 18}" font-size="11" text-anchor="${end ? "end" : "start"}" fill="${m.colour}">run ${m.label}</text>`
        : ""
    }<title>run ${m.label} at +${format.duration(m.offset)}</title></g>`
  })
  const ticks = Array.from({ length: 6 }, (_, i) => start + (span * i) / 5)
  return html`<figure>
<svg class="chart timeline" viewBox="0 0 ${width} ${height}" role="group" aria-labelledby="timeline-t">
<title id="timeline-t">Timeline: each step's attempts on a time axis of ${format.duration(span)}</title>
${
    lanes.map((lane, i) => {
      const y = top + i * laneHeight
      return html`<g class="lane" data-step="${lane.stepId}">
<rect x="0" y="${y}" width="${width}" height="${laneHeight}" fill="${i % 2 === 0 ? "#f6f8fa" : "#ffffff"}"/>
<text x="10" y="${y + 19}" font-size="13" font-weight="600" fill="#1f2328">${lane.stepId}${irreversible.has(lane.stepId) ? " ⚑" : ""}</text>
<text x="10" y="${y + 35}" font-size="11" fill="#59636e">${lane.note}</text>
</g>`
    })
  }
${
    ticks.map((t) =>
      html`<g class="tick"><line x1="${x(t).toFixed(1)}" y1="${height - bottom}" x2="${x(t).toFixed(1)}" y2="${height - bottom + 5}" stroke="#8c959f"/><text x="${x(t).toFixed(1)}" y="${height - bottom + 18}" font-size="11" text-anchor="middle" fill="#59636e">+${format.duration(t - start)}</text></g>`
    )
  }
<line x1="${labelWidth}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#8c959f"/>
${runLayer}
${marks}
</svg>
<figcaption><ul class="legend">
<li><i style="background:${colours.completed}"></i>completed</li>
<li><i style="background:${colours.transient}"></i>failed, transient (retried)</li>
<li><i style="background:${colours.deterministic}"></i>failed, deterministic</li>
<li><i style="background:#fff;border:2px solid ${colours.served}"></i>served from the log</li>
<li><i style="background:${colours.compensation}"></i>compensation</li>
<li>⚑ irreversible step (its completion is the pivot)</li>
</ul></figcaption>
</figure>`
}
