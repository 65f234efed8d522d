/**
 * The cost ledger's fold: one pass over each run's events, in seq order, putting every usage record in the
 * spent, saved, held or wasted column of its group (by pipeline, step, model, key, run or chain), and
 * gathering the drift and findings rows and the runs that hold paid completions.
 */
import type { DriftRow, FindingRow, GroupBy, HoldingRun, RowFields } from "../CostLedger.js"
import type * as Event from "../Event.js"
import type { RunRecord } from "../EventStore.js"
import type * as Pricing from "../Pricing.js"
import type { Usage } from "../Usage.js"
import { addUsage, difference, frozen, type MutableTally, tally } from "./money.js"

/** One group's columns, and the models in it without a price. */
export interface Group {
  readonly spent: MutableTally
  readonly saved: MutableTally
  readonly held: MutableTally
  readonly wasted: MutableTally
  readonly unpriced: Set<string>
}

type Column = "spent" | "saved" | "held" | "wasted"

const group = (): Group => ({ spent: tally(), saved: tally(), held: tally(), wasted: tally(), unpriced: new Set() })

/**
 * Where a run's standing paid completions are when its log ends: held while it sits failed (a resume would
 * serve them), wasted once it is cancelled (nothing will), nowhere while it runs or after it completed.
 */
const standingColumn = (status: RunRecord["status"]): Column | undefined => {
  switch (status) {
    case "failed":
    case "needs_attention":
    case "rolled_back":
    case "compensating":
      return "held"
    case "cancelled":
      return "wasted"
    case "running":
    case "completed":
      return undefined
  }
}

/** A fold over runs: give it each run's events, then read what it gathered. */
export interface Fold {
  /** Fold one run's events (in seq order) into the groups. */
  readonly run: (run: RunRecord, events: ReadonlyArray<Event.Event>) => void
  /** What the runs folded so far add up to. */
  readonly done: () => Folded
}

export interface Folded {
  readonly groups: ReadonlyMap<string, Group>
  /** Each group's fields, as data (`pipeline`, `step`, `model`, …): a row's group joins them for people. */
  readonly fieldsOf: ReadonlyMap<string, RowFields>
  readonly totals: Group
  readonly holding: ReadonlyArray<HoldingRun>
  readonly drift: ReadonlyArray<DriftRow>
  readonly findings: ReadonlyArray<FindingRow>
}

export const makeFold = (options: {
  readonly by: GroupBy
  readonly since: number | undefined
  readonly table: Pricing.PriceTable
  /** Every run read, by id: a chain is found through them. */
  readonly runs: ReadonlyArray<RunRecord>
}): Fold => {
  const { by, since, table } = options
  const byId = new Map(options.runs.map((r) => [r.runId, r]))
  const groups = new Map<string, Group>()
  const fieldsOf = new Map<string, RowFields>()
  const totals: Group = group()
  const holding: Array<HoldingRun> = []
  const drift = new Map<string, Omit<DriftRow, "runs" | "wasted"> & { runs: Set<string>; wasted: MutableTally }>()
  const findings = new Map<string, Omit<FindingRow, "runs"> & { runs: Set<string> }>()

  const fields = (run: RunRecord, step: string, model: string): RowFields => {
    switch (by) {
      case "pipeline":
        return { pipeline: run.pipeline }
      case "step":
        return { pipeline: run.pipeline, step }
      case "model":
        return { model }
      case "key":
        return { pipeline: run.pipeline, key: run.key }
      case "run":
        return { pipeline: run.pipeline, runId: run.runId }
      case "correlation":
        return {}
    }
  }

  const groupOf = (run: RunRecord, step: string, model: string): string => {
    switch (by) {
      case "pipeline":
        return run.pipeline
      case "step":
        return `${run.pipeline}/${step}`
      case "model":
        return model
      case "key":
        return run.key
      case "run":
        return run.runId
      case "correlation":
        return chainOf(run, byId)
    }
  }

  const add = (target: Group, column: Column, usage: Usage) => {
    const unpriced = addUsage(target[column], usage, table)
    if (unpriced !== undefined) target.unpriced.add(unpriced)
  }

  const record = (run: RunRecord, step: string, column: Column, usage: ReadonlyArray<Usage>) => {
    for (const u of usage) {
      const key = groupOf(run, step, u.model)
      let target = groups.get(key)
      if (target === undefined) {
        target = group()
        groups.set(key, target)
        fieldsOf.set(key, fields(run, step, u.model))
      }
      add(target, column, u)
      add(totals, column, u)
    }
  }

  const foldRun = (run: RunRecord, events: ReadonlyArray<Event.Event>): void => {
    // The completion standing for each step: what serving it saves, or undoing it wastes.
    const completions = new Map<string, { readonly name: string; readonly usage: ReadonlyArray<Usage>; readonly at: number }>()
    // Paid completions no execution has served since they were paid: what a failed run holds.
    const unused = new Set<string>()
    for (const event of events) {
      const counted = since === undefined || event.at >= since
      switch (event._tag) {
        case "StepCompleted": {
          const usage = event.usage ?? []
          completions.set(event.stepId, { name: event.name, usage, at: event.at })
          unused.add(event.stepId)
          if (counted) record(run, event.name, "spent", usage)
          break
        }
        case "RunRedelivered": {
          // Answered from the stored outcome: every paid completion standing was not paid for again.
          if (!counted) break
          for (const completion of completions.values()) record(run, completion.name, "saved", completion.usage)
          break
        }
        case "StepAttemptFailed": {
          if (!counted) break
          const usage = event.usage ?? []
          record(run, event.name, "spent", usage)
          record(run, event.name, "wasted", usage)
          if (event.failure.rule === "schema-drift") {
            const fingerprint = event.failure.cause?.code ?? event.failure.cause?.message ?? "unknown"
            const key = `${run.pipeline}\u0000${event.name}\u0000${fingerprint}`
            const row = drift.get(key) ?? {
              pipeline: run.pipeline,
              step: event.name,
              fingerprint,
              count: 0,
              wasted: tally(),
              runs: new Set<string>(),
              firstAt: event.at,
              lastAt: event.at
            }
            for (const u of usage) addUsage(row.wasted, u, table)
            row.runs.add(run.runId)
            drift.set(key, { ...row, count: row.count + 1, lastAt: Math.max(row.lastAt, event.at) })
          }
          break
        }
        case "StepsServed": {
          if (!counted) break
          for (const stepId of event.stepIds) {
            unused.delete(stepId)
            const completion = completions.get(stepId)
            if (completion !== undefined) record(run, completion.name, "saved", completion.usage)
          }
          break
        }
        case "CompensationCompleted": {
          // The step's effect is undone: the paid result of its completion is thrown away.
          const completion = completions.get(event.stepId)
          completions.delete(event.stepId)
          unused.delete(event.stepId)
          if (counted && completion !== undefined) record(run, completion.name, "wasted", completion.usage)
          break
        }
        case "StepFinding": {
          if (!counted) break
          const key = `${run.pipeline}\u0000${event.name}\u0000${event.kind}`
          const over = (f: { readonly limit?: number; readonly actual?: number }) =>
            f.limit !== undefined && f.actual !== undefined ? f.actual - f.limit : 0
          const row = findings.get(key)
          const current = {
            message: event.message,
            ...(event.limit !== undefined ? { limit: event.limit } : {}),
            ...(event.actual !== undefined ? { actual: event.actual } : {})
          }
          if (row === undefined) {
            findings.set(key, {
              pipeline: run.pipeline,
              step: event.name,
              kind: event.kind,
              count: 1,
              worst: current,
              runs: new Set([run.runId])
            })
          } else {
            row.runs.add(run.runId)
            findings.set(key, {
              ...row,
              count: row.count + 1,
              worst: over(current) > over(row.worst) ? current : row.worst
            })
          }
          break
        }
        default:
          break
      }
    }
    // What the run's standing, unused paid completions are now (held or wasted), from the status its log
    // ends in (the projection is updated with each append).
    const column = standingColumn(run.status)
    if (column !== undefined) {
      const before = { ...totals.held }
      for (const stepId of unused) {
        const completion = completions.get(stepId)!
        if (since === undefined || completion.at >= since) record(run, completion.name, column, completion.usage)
      }
      if (column === "held" && totals.held.calls > before.calls) {
        holding.push({
          runId: run.runId,
          pipeline: run.pipeline,
          key: run.key,
          status: run.status,
          held: frozen(difference(totals.held, before))
        })
      }
    }
  }

  return {
    run: foldRun,
    done: () => ({
      groups,
      fieldsOf,
      totals,
      holding,
      drift: [...drift.values()].map((d) => ({ ...d, wasted: frozen(d.wasted), runs: [...d.runs] })),
      findings: [...findings.values()].map((f) => ({ ...f, runs: [...f.runs] }))
    })
  }
}

/** A run's chain: its correlation id, or its first ancestor's (or that ancestor's run id). */
const chainOf = (run: RunRecord, byId: ReadonlyMap<string, RunRecord>): string => {
  let current = run
  const seen = new Set<string>()
  while (current.correlationId === undefined && current.parentRunId !== undefined && !seen.has(current.runId)) {
    seen.add(current.runId)
    const parent = byId.get(current.parentRunId)
    if (parent === undefined) return current.parentRunId
    current = parent
  }
  return current.correlationId ?? current.runId
}
