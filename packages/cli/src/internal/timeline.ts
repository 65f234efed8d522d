/**
 * A run's log read as a story: one row per event (what happened to which step, when), a summary per step,
 * and the tokens the run spent and those its resumes saved by serving completions from the log.
 */
import type { Event, Failure, Usage } from "@ledgerflow/core"
import type { LoggedEvent } from "./events.js"
import * as format from "./format.js"

export type Tone = "ok" | "fail" | "warn" | "info" | "quiet"

export interface Row {
  readonly seq: number
  /** Milliseconds since the run started. */
  readonly offset: number
  /** The step's id, or empty for events of the run itself. */
  readonly step: string
  readonly text: string
  /** How long the attempt took, for attempt outcomes. */
  readonly took: number | undefined
  readonly tone: Tone
  /** Extra lines for `--verbose` (input hash, output JSON). */
  readonly details: ReadonlyArray<string>
}

export interface Tokens {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheWriteTokens: number
  readonly cacheReadTokens: number
}

export interface StepSummary {
  readonly stepId: string
  readonly name: string
  readonly inputHash: string
  /** Attempts that ended: failed ones plus the completion. */
  readonly attempts: number
  readonly failures: number
  readonly state: "completed" | "failed" | "retrying" | "in doubt" | "compensating" | "compensated" | "compensation failed"
  /** Times a resumed execution served the step's completion from the log instead of running it. */
  readonly served: number
  readonly spent: Tokens
  readonly lastFailure?: { readonly classification: Failure.Classification; readonly reason: string }
}

export interface Timeline {
  readonly rows: ReadonlyArray<Row>
  readonly steps: ReadonlyArray<StepSummary>
  /** Every attempt's usage. */
  readonly spent: Tokens
  /** The usage of the completions served from the log: paid once, not again. */
  readonly saved: Tokens
}

export const noTokens: Tokens = { inputTokens: 0, outputTokens: 0, cacheWriteTokens: 0, cacheReadTokens: 0 }

export const addUsage = (total: Tokens, usage: ReadonlyArray<Usage.Usage> | undefined): Tokens =>
  (usage ?? []).reduce((t, u) => ({
    inputTokens: t.inputTokens + u.inputTokens,
    outputTokens: t.outputTokens + u.outputTokens,
    cacheWriteTokens: t.cacheWriteTokens + u.cacheWriteTokens,
    cacheReadTokens: t.cacheReadTokens + u.cacheReadTokens
  }), total)

export const addTokens = (a: Tokens, b: Tokens): Tokens => ({
  inputTokens: a.inputTokens + b.inputTokens,
  outputTokens: a.outputTokens + b.outputTokens,
  cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens
})

export const hasTokens = (t: Tokens): boolean =>
  t.inputTokens + t.outputTokens + t.cacheWriteTokens + t.cacheReadTokens > 0

const classOf = (failure: Failure.Failure): Failure.Classification =>
  failure._tag === "Transient" ? "transient" : "deterministic"

/** `transient: HTTP 503 …`, with the classifier's rule when the reason does not name it already. */
const describeFailure = (failure: Failure.Failure): string =>
  `${classOf(failure)}: ${failure.reason}${
    failure.rule !== undefined && !failure.reason.includes(failure.rule) ? ` [rule ${failure.rule}]` : ""
  }`

const usageText = (usage: ReadonlyArray<Usage.Usage> | undefined): string => {
  if (usage === undefined || usage.length === 0) return ""
  const models = [...new Set(usage.map((u) => u.model))].join(", ")
  return `; tokens ${format.tokens(addUsage(noTokens, usage))} (${models})`
}

interface MutableStep {
  stepId: string
  name: string
  inputHash: string
  attempts: number
  failures: number
  state: StepSummary["state"]
  served: number
  spent: Tokens
  completionUsage: ReadonlyArray<Usage.Usage>
  lastFailure?: NonNullable<StepSummary["lastFailure"]>
}

/** Fold a run's events into its timeline. */
export const make = (events: ReadonlyArray<LoggedEvent>): Timeline => {
  const start = events[0]?.event.at ?? 0
  const steps = new Map<string, MutableStep>()
  const rows: Array<Row> = []
  let spent = noTokens
  let saved = noTokens

  const step = (stepId: string, name: string, inputHash: string): MutableStep => {
    let s = steps.get(stepId)
    if (s === undefined) {
      s = { stepId, name, inputHash, attempts: 0, failures: 0, state: "retrying", served: 0, spent: noTokens, completionUsage: [] }
      steps.set(stepId, s)
    }
    s.inputHash = inputHash
    return s
  }

  for (const { event, stored } of events) {
    const row = (stepId: string, text: string, tone: Tone, details: ReadonlyArray<string> = [], took?: number) =>
      rows.push({ seq: stored.seq, offset: event.at - start, step: stepId, text, took, tone, details })
    const e: Event.Event = event
    switch (e._tag) {
      case "RunStarted":
        row("", `run started (${e.pipeline}@${e.version}, key ${e.key})`, "info", [
          `input hash ${e.inputHash}`,
          `input ${format.json(e.input)}`
        ])
        break
      case "RunResumed":
        row("", `run resumed: ${e.reason}`, "info")
        break
      case "LeaseTaken":
        row("", `lease taken by ${e.owner} (token ${e.token})`, "quiet")
        break
      case "StepStarted": {
        step(e.stepId, e.name, e.inputHash).state = "in doubt"
        row(e.stepId, `attempt ${e.attempt} started (irreversible; idempotency key ${e.idempotencyKey})`, "info")
        break
      }
      case "StepAttemptFailed": {
        const s = step(e.stepId, e.name, e.inputHash)
        s.attempts++
        s.failures++
        s.spent = addUsage(s.spent, e.usage)
        spent = addUsage(spent, e.usage)
        s.state = e.retryDelayMs !== undefined ? "retrying" : "failed"
        s.lastFailure = { classification: classOf(e.failure), reason: e.failure.reason }
        const next = e.retryDelayMs !== undefined
          ? `; retry in ${format.duration(e.retryDelayMs)}`
          : e.giveUp !== undefined
          // The give-up note often repeats the reason in parentheses: say it once.
          ? `; gave up: ${e.giveUp.replace(` (${e.failure.reason})`, "")}`
          : ""
        row(
          e.stepId,
          `✗ attempt ${e.attempt} failed, ${describeFailure(e.failure)}${next}${usageText(e.usage)}`,
          "fail",
          [],
          e.at - e.startedAt
        )
        break
      }
      case "StepCompleted": {
        const s = step(e.stepId, e.name, e.inputHash)
        s.attempts++
        s.state = "completed"
        s.spent = addUsage(s.spent, e.usage)
        s.completionUsage = e.usage ?? []
        spent = addUsage(spent, e.usage)
        row(
          e.stepId,
          `✓ completed, attempt ${e.attempt}${usageText(e.usage)}`,
          "ok",
          [`input hash ${e.inputHash}`, `output ${format.json(e.output)}`],
          e.at - e.startedAt
        )
        break
      }
      case "StepsServed": {
        let tokens = noTokens
        for (const id of e.stepIds) {
          const s = steps.get(id)
          if (s === undefined) continue
          s.served++
          tokens = addUsage(tokens, s.completionUsage)
        }
        saved = addTokens(saved, tokens)
        row(
          "",
          `served from the log, not run again: ${e.stepIds.join(", ")}${
            hasTokens(tokens) ? `; saved ${format.tokens(tokens)} tokens` : ""
          }`,
          "ok"
        )
        break
      }
      case "CompensationStarted": {
        const s = steps.get(e.stepId)
        if (s !== undefined) s.state = "compensating"
        row(e.stepId, `↺ compensation started, attempt ${e.attempt}`, "warn")
        break
      }
      case "CompensationCompleted": {
        const s = steps.get(e.stepId)
        if (s !== undefined) s.state = "compensated"
        row(e.stepId, `↺ compensated`, "warn")
        break
      }
      case "CompensationFailed": {
        const s = steps.get(e.stepId)
        if (s !== undefined && e.retryDelayMs === undefined) s.state = "compensation failed"
        row(
          e.stepId,
          `✗ compensation attempt ${e.attempt} failed, ${describeFailure(e.failure)}${
            e.retryDelayMs !== undefined ? `; retry in ${format.duration(e.retryDelayMs)}` : ""
          }`,
          "fail"
        )
        break
      }
      case "RunCompleted":
        row("", "run completed", "ok", [`output ${format.json(e.output)}`])
        break
      case "RunFailed": {
        // The failing attempt's row, just above, has told the reason already.
        const told = e.stepId !== undefined && steps.get(e.stepId)?.lastFailure?.reason === e.failure.reason
        row(
          "",
          `run failed${e.stepId !== undefined ? ` at ${e.stepId}` : ""}, ${
            told ? classOf(e.failure) : describeFailure(e.failure)
          }`,
          "fail",
          [`fingerprint ${e.fingerprint}`]
        )
        break
      }
      case "RunRolledBack":
        row("", "run rolled back", "warn")
        break
      case "RunNeedsAttention":
        row("", `run needs attention: ${e.reason}${e.pending.length > 0 ? ` (pending: ${e.pending.join(", ")})` : ""}`, "fail")
        break
      case "RunCancelled":
        row("", `run cancelled: ${e.reason}`, "warn")
        break
      default:
        // Events added after this CLI was written still show, by type.
        row("stepId" in e && typeof e.stepId === "string" ? e.stepId : "", describeOther(e), "info")
    }
  }
  return {
    rows,
    steps: [...steps.values()].map(({ completionUsage: _, ...s }) => s),
    spent,
    saved
  }
}

/** An event without its own wording: a finding (`kind`, `message`), or its type and scalar fields. */
const describeOther = (event: { readonly _tag: string }): string => {
  const record: Record<string, unknown> = { ...event }
  if (typeof record["kind"] === "string" && typeof record["message"] === "string") {
    return `! ${record["kind"]}: ${record["message"]}`
  }
  const fields = Object.entries(event)
    .filter(([k, v]) => k !== "_tag" && k !== "at" && k !== "stepId" && (typeof v === "string" || typeof v === "number"))
    .map(([k, v]) => `${k} ${String(v)}`)
  return `${event._tag}${fields.length > 0 ? `: ${fields.join(", ")}` : ""}`
}
