/**
 * The nearest peer on the same workload: `@effect/workflow` made durable the way its users do it —
 * `@effect/cluster`'s `ClusterWorkflowEngine` on `SingleRunner.layer({ runnerStorage: "sql" })` (default
 * sharding config), over `SqliteClient` (WAL) with `PRAGMA synchronous = FULL`; each step an `Activity`.
 */
import { ClusterWorkflowEngine, SingleRunner } from "@effect/cluster"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Activity, Workflow } from "@effect/workflow"
import { Effect, Layer, Schema } from "effect"
import { freshFile, type Sample, startTimer, stepOutput, workload } from "./support.js"

const Output = Schema.Struct({ run: Schema.Number, step: Schema.Number, ok: Schema.Boolean, note: Schema.String })

const BenchWorkflow = Workflow.make({
  name: "BenchWorkflow",
  payload: { run: Schema.Number, batch: Schema.String },
  success: Schema.Number,
  idempotencyKey: ({ batch, run }) => `${batch}/${run}`
})

/** The same 10 trivial steps, each a durable `Activity` whose result is journaled before the next. */
const BenchWorkflowLayer = BenchWorkflow.toLayer(({ run }) =>
  Effect.gen(function*() {
    let sum = 0
    for (let step = 0; step < workload.steps; step++) {
      const out = yield* Activity.make({
        name: `step-${step}`,
        success: Output,
        execute: Effect.sync(() => stepOutput(run, step))
      })
      sum += out.step
    }
    return sum
  })
)

/** The file as the peer's users open it: `SqliteClient` (WAL by default), then synchronous=FULL. */
const sqlite = (filename: string) =>
  Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("PRAGMA synchronous = FULL"))).pipe(
    Layer.provideMerge(SqliteClient.layer({ filename }))
  )

const layer = (filename: string) =>
  BenchWorkflowLayer.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer),
    Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql" })),
    Layer.provideMerge(sqlite(filename))
  )

const runs = (batch: string, count: number, concurrency: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, run) => run),
    (run) => BenchWorkflow.execute({ run, batch }),
    { concurrency, discard: true }
  )

export interface PeerResult {
  readonly sequential: Sample
  readonly concurrent: Sample
  /** `PRAGMA synchronous` read back from the peer's connection (2 = FULL). */
  readonly synchronous: number
  /** Building the layers: migrations, shard acquisition. */
  readonly startupMs: number
}

/** Fewer runs than ledgerflow's 200: the peer is slow enough that 200 would blow the time budget. */
export const measure = (options: { readonly sequentialRuns: number; readonly concurrentRuns: number }) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const startup = startTimer()
      const context = yield* Layer.build(layer(freshFile("peer")))
      const startupMs = startup(0).ms
      return yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [pragma] = yield* sql.unsafe<{ synchronous: number }>("PRAGMA synchronous")
        yield* runs("warm-up", 4, 1)
        yield* runs("warm-up-concurrent", workload.concurrency, workload.concurrency)
        const seq = startTimer()
        yield* runs("sequential", options.sequentialRuns, 1)
        const sequential = seq(options.sequentialRuns * workload.steps)
        const conc = startTimer()
        yield* runs("concurrent", options.concurrentRuns, workload.concurrency)
        const concurrent = conc(options.concurrentRuns * workload.steps)
        return { sequential, concurrent, synchronous: pragma?.synchronous ?? -1, startupMs } satisfies PeerResult
      }).pipe(Effect.provide(context))
    }).pipe(Effect.scoped, Effect.timeout("150 seconds"))
  )
