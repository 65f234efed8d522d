/**
 * The cost ledger: every token the pipelines spent, attributed to a run, a step, a model and a key, and
 * split into spent, saved and wasted. A projection of the event log (runs and their events, read through
 * the `EventStore`), priced with the `Pricing` table — so it is the same after a restart, on any worker.
 *
 * - **spent**: the usage of every attempt (failed ones included): what the provider billed.
 * - **saved**: completions served from the log instead of re-run (`StepsServed`), at the cost their
 *   completion recorded: what a naive retry would have paid again; and, for each redelivery of a finished or
 *   failed key answered from its stored outcome (`RunRedelivered`), the paid completions standing then.
 * - **held**: paid completions of a failed run (failed, needing attention, rolled back keeping them) that no
 *   execution has served yet: a resume would serve them. Held becomes saved when a resume serves it, and
 *   wasted when the run is cancelled. `Report.holding` names the runs that hold it.
 * - **wasted**: paid results that were thrown away — every failed attempt (a drifted reply, a later error
 *   after a paid call), and completions undone by a completed compensation. Outputs kept on rollback (Claude
 *   steps are `keepOnRollback`) and completions of a failed run that a resume can still serve are not waste.
 */
import type * as Effect from "effect/Effect"
import type * as Event from "./Event.js"
import type { EventStore, RunRecord } from "./EventStore.js"
import * as internal from "./internal/costLedger.js"
import type { StoreError } from "./StoreError.js"

/** What a report's rows are: one per pipeline, step (`pipeline/step`), model, run key, run, or chain. */
export type GroupBy = "pipeline" | "step" | "model" | "key" | "run" | "correlation"

export interface ReportOptions {
  readonly by: GroupBy
  /** Only what happened at or after this time (epoch millis or a `Date`). */
  readonly since?: number | Date | undefined
  readonly pipeline?: string | undefined
  /** One run only. */
  readonly runId?: string | undefined
  /**
   * A chain of runs across workers: runs with this `correlationId`, the run with this id, and every run
   * whose `parentRunId` leads to one of them.
   */
  readonly correlationId?: string | undefined
}

/** Tokens, calls and dollars. `usd` counts priced models only: see the row's `unpriced`. */
export interface Tally {
  readonly usd: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheWriteTokens: number
  readonly cacheReadTokens: number
  /** Usage records: one per paid call. */
  readonly calls: number
}

export interface Row {
  readonly group: string
  readonly spent: Tally
  readonly saved: Tally
  readonly held: Tally
  readonly wasted: Tally
  /** Models in this row without a price: their tokens are counted, their dollars are not. */
  readonly unpriced: ReadonlyArray<string>
  /** This row's part of the total spent (0..1): "summarize: 58% of input tokens". */
  readonly share: { readonly usd: number; readonly inputTokens: number; readonly outputTokens: number }
}

/** One drift of one step, by structural fingerprint: how often, and what it wasted. */
export interface DriftRow {
  readonly pipeline: string
  readonly step: string
  readonly fingerprint: string
  readonly count: number
  readonly wasted: Tally
  readonly runs: ReadonlyArray<string>
  readonly firstAt: number
  readonly lastAt: number
}

/** Findings of one kind on one step (e.g. `ContextOverCeiling`), with the worst one. */
export interface FindingRow {
  readonly pipeline: string
  readonly step: string
  readonly kind: string
  readonly count: number
  readonly worst: { readonly message: string; readonly limit?: number; readonly actual?: number }
  readonly runs: ReadonlyArray<string>
}

/** A failed run holding paid completions a resume would serve. */
export interface HoldingRun {
  readonly runId: string
  readonly pipeline: string
  readonly key: string
  readonly status: RunRecord["status"]
  readonly held: Tally
}

export interface Report {
  readonly by: GroupBy
  readonly since?: number
  /** The date of the price table used. */
  readonly pricesAsOf: string
  /** Rows by spent dollars, then spent input tokens, largest first. */
  readonly rows: ReadonlyArray<Row>
  readonly totals: {
    readonly spent: Tally
    readonly saved: Tally
    readonly held: Tally
    readonly wasted: Tally
    readonly unpriced: ReadonlyArray<string>
  }
  readonly drift: ReadonlyArray<DriftRow>
  readonly findings: ReadonlyArray<FindingRow>
  /** The runs that hold paid completions (largest first): resume them to use it, or roll them back. */
  readonly holding: ReadonlyArray<HoldingRun>
  /** How many runs the report read. */
  readonly runs: number
}

/**
 * Project the log into a cost report. Prices come from the `Pricing` service when one is provided, else
 * from `Pricing.defaultTable`.
 */
export const report: (options: ReportOptions) => Effect.Effect<Report, StoreError | Event.UnknownEvent, EventStore> =
  internal.report

/** An empty tally. */
export const zero: Tally = internal.zero
