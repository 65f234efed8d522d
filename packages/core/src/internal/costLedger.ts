/**
 * The cost ledger's projection: one pass over each run's events, in seq order, pricing every usage record
 * and putting it in the spent, saved or wasted column of its group.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { DriftRow, FindingRow, HoldingRun, Report, ReportOptions, Row, Tally } from "../CostLedger.js"
import * as Event from "../Event.js"
import { EventStore, type RunRecord } from "../EventStore.js"
import * as Pricing from "../Pricing.js"
import type { StoreError } from "../StoreError.js"
import type { Usage } from "../Usage.js"

export const zero: Tally = { usd: 0, inputTokens: 0, outputTokens: 0, cacheWriteTokens: 0, cacheReadTokens: 0, calls: 0 }

interface MutableTally {
  usd: number
  inputTokens: number
  outputTokens: number
  cacheWriteTokens: number
  cacheReadTokens: number
  calls: number
}

const tally = (): MutableTally => ({ ...zero })

interface Group {
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

export const report = (
  options: ReportOptions
): Effect.Effect<Report, StoreError | Event.UnknownEvent, EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const table = Option.getOrElse(yield* Effect.serviceOption(Pricing.Pricing), () => Pricing.defaultTable)
    const since = options.since === undefined
      ? undefined
      : typeof options.since === "number"
      ? options.since
      : options.since.getTime()
    const runs = yield* selectRuns(options, since)

    const groups = new Map<string, Group>()
    const totals: Group = group()
    const holding: Array<HoldingRun> = []
    const drift = new Map<string, Omit<DriftRow, "runs" | "wasted"> & { runs: Set<string>; wasted: MutableTally }>()
    const findings = new Map<string, Omit<FindingRow, "runs"> & { runs: Set<string> }>()
    const byId = new Map(runs.map((r) => [r.runId, r]))

    const groupOf = (run: RunRecord, step: string, model: string): string => {
      switch (options.by) {
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

    /** Adds the usage to the tally; returns the model when it has no price. */
    const addTo = (t: MutableTally, usage: Usage): string | undefined => {
      t.inputTokens += usage.inputTokens
      t.outputTokens += usage.outputTokens
      t.cacheWriteTokens += usage.cacheWriteTokens
      t.cacheReadTokens += usage.cacheReadTokens
      t.calls += 1
      const cost = Pricing.cost(table, usage)
      if (cost._tag === "Priced") t.usd += cost.usd
      return cost._tag === "Unpriced" ? cost.model : undefined
    }

    const add = (target: Group, column: Column, usage: Usage) => {
      const unpriced = addTo(target[column], usage)
      if (unpriced !== undefined) target.unpriced.add(unpriced)
    }

    const record = (run: RunRecord, step: string, column: Column, usage: ReadonlyArray<Usage>) => {
      for (const u of usage) {
        const key = groupOf(run, step, u.model)
        let target = groups.get(key)
        if (target === undefined) {
          target = group()
          groups.set(key, target)
        }
        add(target, column, u)
        add(totals, column, u)
      }
    }

    for (const run of runs) {
      const events = yield* store.readEvents(run.runId).pipe(Effect.flatMap(Event.decodeAll))
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
              for (const u of usage) addTo(row.wasted, u)
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
        const before = { ...totals[column] }
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
            held: difference(totals.held, before)
          })
        }
      }
    }

    const share = (part: number, whole: number) => (whole === 0 ? 0 : part / whole)
    const rows: Array<Row> = [...groups].map(([group, g]) => ({
      group,
      spent: { ...g.spent },
      saved: { ...g.saved },
      held: { ...g.held },
      wasted: { ...g.wasted },
      unpriced: [...g.unpriced].sort(),
      share: {
        usd: share(g.spent.usd, totals.spent.usd),
        inputTokens: share(g.spent.inputTokens, totals.spent.inputTokens),
        outputTokens: share(g.spent.outputTokens, totals.spent.outputTokens)
      }
    }))
    rows.sort((a, b) =>
      b.spent.usd - a.spent.usd || b.spent.inputTokens - a.spent.inputTokens || (a.group < b.group ? -1 : 1)
    )
    return {
      by: options.by,
      ...(since !== undefined ? { since } : {}),
      pricesAsOf: table.asOf,
      rows,
      totals: {
        spent: { ...totals.spent },
        saved: { ...totals.saved },
        held: { ...totals.held },
        wasted: { ...totals.wasted },
        unpriced: [...totals.unpriced].sort()
      },
      drift: [...drift.values()]
        .map((d) => ({ ...d, wasted: { ...d.wasted }, runs: [...d.runs] }))
        .sort((a, b) => b.count - a.count || b.wasted.usd - a.wasted.usd),
      findings: [...findings.values()]
        .map((f) => ({ ...f, runs: [...f.runs] }))
        .sort((a, b) => b.count - a.count),
      holding: holding.sort((a, b) => b.held.usd - a.held.usd || b.held.calls - a.held.calls),
      runs: runs.length
    } satisfies Report
  })

const difference = (after: Tally, before: Tally): Tally => ({
  usd: after.usd - before.usd,
  inputTokens: after.inputTokens - before.inputTokens,
  outputTokens: after.outputTokens - before.outputTokens,
  cacheWriteTokens: after.cacheWriteTokens - before.cacheWriteTokens,
  cacheReadTokens: after.cacheReadTokens - before.cacheReadTokens,
  calls: after.calls - before.calls
})

/** The runs a report reads: by id, by chain, by pipeline, touched since. */
const selectRuns = (
  options: ReportOptions,
  since: number | undefined
): Effect.Effect<ReadonlyArray<RunRecord>, StoreError, EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    if (options.runId !== undefined) {
      const run = yield* store.getRun(options.runId)
      return Option.match(run, { onNone: () => [], onSome: (r) => [r] })
    }
    if (options.correlationId === undefined) {
      return yield* store.listRuns({ pipeline: options.pipeline, since })
    }
    // A chain may span pipelines: build it from every run, then keep the pipeline asked for.
    const all = yield* store.listRuns({ since })
    const id = options.correlationId
    const members = new Set(all.filter((r) => r.correlationId === id || r.runId === id).map((r) => r.runId))
    let grew = true
    while (grew) {
      grew = false
      for (const r of all) {
        if (!members.has(r.runId) && r.parentRunId !== undefined && members.has(r.parentRunId)) {
          members.add(r.runId)
          grew = true
        }
      }
    }
    return all.filter((r) => members.has(r.runId) && (options.pipeline === undefined || r.pipeline === options.pipeline))
  })

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
