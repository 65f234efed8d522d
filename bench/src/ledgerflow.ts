/**
 * ledgerflow's durable step on the shared workload: a 10-step pipeline on `SqliteStore.layer({ filename })`
 * (WAL, synchronous=FULL by default), runs one after another or 16 at a time. Also the store's calls of
 * such a run alone, without the engine, to tell the store's cost from the engine's.
 */
import { Engine, Event, EventStore, Pipeline, Step } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, Schema } from "effect"
import { stepEvent, type Synchronous } from "./ceiling.js"
import { freshFile, type Sample, startTimer, stepOutput, warmRuns, workload } from "./support.js"

const Output = Schema.Struct({ run: Schema.Number, step: Schema.Number, ok: Schema.Boolean, note: Schema.String })

/** The workload's steps, as a user writes them (also counted in `operations.ts`). */
export const steps = Array.from({ length: workload.steps }, (_, i) =>
  Step.make({
    name: `step-${i}`,
    input: Schema.Struct({ run: Schema.Number }),
    output: Output,
    run: ({ run }) => Effect.sync(() => stepOutput(run, i))
  }))

/**
 * The pipeline as a user writes it, running its first `steps` steps (all by default; 0: a run with no step,
 * as `operations.ts` counts one); `breaker: false` only to isolate what the storm breaker's check costs.
 */
export const makePipeline = (
  options: { readonly breaker?: false; readonly name?: string; readonly steps?: number } = {}
) => {
  const { breaker, name = "bench", steps: count = steps.length } = options
  const used = steps.slice(0, count)
  return Pipeline.make({
    name,
    version: 1,
    input: Schema.Struct({ run: Schema.Number, batch: Schema.String }),
    output: Schema.Number,
    ...(breaker !== undefined ? { breaker } : {}),
    run: ({ run }) =>
      Effect.gen(function*() {
        let sum = 0
        for (const step of used) sum += (yield* step({ run })).step
        return sum
      })
  })
}

export const pipeline = makePipeline()
const pipelineWithoutBreaker = makePipeline({ breaker: false })

export const layer = (filename: string, synchronous: Synchronous = "full") =>
  Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename, synchronous })))

/** Runs `from`..`to`-1 of a batch (distinct inputs, so distinct keys), `concurrency` at a time. */
export const runs = (
  batch: string,
  range: { readonly from?: number; readonly to: number },
  concurrency: number,
  p: typeof pipeline = pipeline
) =>
  Effect.forEach(
    Array.from({ length: range.to - (range.from ?? 0) }, (_, i) => (range.from ?? 0) + i),
    (run) => Engine.run(p, { run, batch }),
    { concurrency, discard: true }
  )

export interface Options {
  readonly runs: number
  readonly concurrency: number
  readonly synchronous: Synchronous
  readonly breaker?: false
}

/** Time the runs on a fresh store, after `warmRuns` untimed ones; opening it and its migrations are not timed. */
export const measure = (options: Options): Promise<Sample> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const p = options.breaker === false ? pipelineWithoutBreaker : pipeline
      yield* runs("warm", { to: warmRuns }, options.concurrency, p)
      const stop = startTimer()
      yield* runs("measured", { to: options.runs }, options.concurrency, p)
      return stop(options.runs * workload.steps)
    }).pipe(Effect.provide(layer(freshFile("ledgerflow"), options.synchronous)))
  )

/**
 * The store alone: the store calls a 10-step run makes, without the engine — the key lookup, the claim, ten
 * durable appends of one step event each (`alone`, as the engine marks a sequential run's writes), and the
 * completion (not synced on its own, with the run's status) — on events encoded before the clock starts.
 * The storm breaker's reads are left out: they are the engine's policy (its own row measures them). What
 * the engine adds to a run is the rest.
 */
export const measureStoreRuns = (options: { readonly runs: number; readonly synchronous: Synchronous }) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const now = Date.now()
      const runs = Array.from({ length: warmRuns + options.runs }, (_, run) => {
        const key = `key-${run}`
        return {
          runId: `run-${run}`,
          key,
          started: [
            Event.encode(Event.make(Event.RunStarted, {
              at: now,
              pipeline: "bench",
              version: "1",
              key,
              input: { run, batch: "measured" },
              inputHash: "0123456789abcdef0123456789abcdef"
            })),
            Event.encode(Event.make(Event.LeaseTaken, { at: now, owner: "bench", token: 1, expiresAt: now + 600_000 }))
          ],
          steps: Array.from({ length: workload.steps }, (_, step) => stepEvent(run, step)),
          completed: Event.encode(Event.make(Event.RunCompleted, { at: now, output: 45 }))
        }
      })
      let stop = startTimer()
      for (const [i, run] of runs.entries()) {
        // The first `warmRuns` warm the file untimed, as every row does.
        if (i === warmRuns) stop = startTimer()
        yield* store.findByKey("bench", run.key)
        yield* store.claim({
          runId: run.runId,
          pipeline: "bench",
          version: "1",
          key: run.key,
          owner: "bench",
          now,
          leaseExpiresAt: now + 600_000,
          alone: true,
          events: run.started
        })
        for (const event of run.steps) {
          yield* store.append({ runId: run.runId, token: 1, events: [event], now, alone: true })
        }
        yield* store.append({
          runId: run.runId,
          token: 1,
          events: [run.completed],
          now,
          alone: true,
          durable: false,
          patch: { status: "completed" }
        })
      }
      return stop(options.runs * workload.steps)
    }).pipe(Effect.provide(SqliteStore.layer({ filename: freshFile("store-runs"), synchronous: options.synchronous })))
  )

/** JIT and file-system warm-up on a throwaway store. */
export const warmUp = (): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function*() {
      yield* runs("warm-seq", { to: 40 }, 1)
      yield* runs("warm-conc", { to: 64 }, workload.concurrency)
      yield* runs("warm-no-breaker", { to: 20 }, 1, pipelineWithoutBreaker)
    }).pipe(Effect.provide(layer(freshFile("ledgerflow-warmup"), "normal")))
  )
