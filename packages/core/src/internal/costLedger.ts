/**
 * The cost ledger's report: read the runs asked for and their events, fold them (`costFold.ts`), and turn
 * the groups into rows with their share of the total, priced with the `Pricing` table (`money.ts`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Report, ReportOptions, Row } from "../CostLedger.js"
import * as Event from "../Event.js"
import { EventStore, type RunRecord } from "../EventStore.js"
import * as Pricing from "../Pricing.js"
import type { StoreError } from "../StoreError.js"
import { makeFold } from "./costFold.js"
import { frozen } from "./money.js"

export { zero } from "./money.js"

export const report = (
  options: ReportOptions
): Effect.Effect<Report, StoreError | Event.UnknownEvent, EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const table = yield* Pricing.current
    const since = options.since === undefined
      ? undefined
      : typeof options.since === "number"
      ? options.since
      : options.since.getTime()
    const runs = yield* selectRuns(options, since)

    const fold = makeFold({ by: options.by, since, table, runs })
    for (const run of runs) {
      fold.run(run, yield* store.readEvents(run.runId).pipe(Effect.flatMap(Event.decodeAll)))
    }
    const { drift, fieldsOf, findings, groups, holding, totals } = fold.done()

    const share = (part: number, whole: number) => (whole === 0 ? 0 : part / whole)
    const rows: Array<Row> = [...groups].map(([group, g]) => ({
      group,
      ...fieldsOf.get(group),
      spent: frozen(g.spent),
      saved: frozen(g.saved),
      held: frozen(g.held),
      wasted: frozen(g.wasted),
      unpriced: [...g.unpriced].sort(),
      share: {
        usd: share(Number(g.spent.units), Number(totals.spent.units)),
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
        spent: frozen(totals.spent),
        saved: frozen(totals.saved),
        held: frozen(totals.held),
        wasted: frozen(totals.wasted),
        unpriced: [...totals.unpriced].sort()
      },
      drift: [...drift].sort((a, b) => b.count - a.count || b.wasted.usd - a.wasted.usd),
      findings: [...findings].sort((a, b) => b.count - a.count),
      holding: [...holding].sort((a, b) => b.held.usd - a.held.usd || b.held.calls - a.held.calls),
      runs: runs.length
    } satisfies Report
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
