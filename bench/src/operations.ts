/**
 * The engine's work counted, not timed: the Effect operations its fibers run for the shared workload's
 * pipeline, on the memory store (the engine alone) and on SQLite, sequential and 16 at a time. A
 * supervisor sees every operation the run loop executes (`RuntimeFlags.OpSupervision`); the count does not
 * move with the machine's load, so it shows a change to the step path where the timed rows only hint at
 * one. Runs with and without steps separate a run's own operations from each step's.
 */
import { Engine, EventStore, Pipeline } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Schema, Supervisor } from "effect"
import { steps } from "./ledgerflow.js"
import { freshFile, workload } from "./support.js"

/** The bench's pipeline with its first `count` steps (0: a run with no step). */
const pipelineOf = (count: number) =>
  Pipeline.make({
    name: `operations-${count}`,
    version: 1,
    input: Schema.Struct({ run: Schema.Number, batch: Schema.String }),
    output: Schema.Number,
    run: ({ run }) =>
      Effect.gen(function*() {
        let sum = 0
        for (const step of steps.slice(0, count)) sum += (yield* step({ run })).step
        return sum
      })
  })

class Counter extends Supervisor.AbstractSupervisor<void> {
  operations = 0
  get value() {
    return Effect.void
  }
  override onEffect() {
    this.operations++
  }
}

/** Operations per run of `runs` runs (after as many untimed ones), `concurrency` at a time. */
const perRun = (count: number, runs: number, concurrency: number) =>
  Effect.gen(function*() {
    const pipeline = pipelineOf(count)
    const go = (batch: string) =>
      Effect.forEach(
        Array.from({ length: runs }, (_, run) => run),
        (run) => Engine.run(pipeline, { run, batch }),
        { concurrency, discard: true }
      )
    yield* go("warm")
    const counter = new Counter()
    yield* go("counted").pipe(
      Effect.supervised(counter),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
    return counter.operations / runs
  })

export interface Operations {
  /** A run's own operations (start, claim, execution, completion), without steps. */
  readonly perRun: number
  /** Each step's, executed (not served): the 10-step run's count less the run's own, over 10. */
  readonly perStep: number
  /** What a step costs with its share of its run: the 10-step run's count over 10. */
  readonly perStepWithRun: number
}

const measureOn = (layer: Layer.Layer<Engine.Engine, unknown>, concurrency: number): Promise<Operations> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const runs = concurrency === 1 ? 20 : 64
      const bare = yield* perRun(0, runs, concurrency)
      const full = yield* perRun(workload.steps, runs, concurrency)
      return { perRun: bare, perStep: (full - bare) / workload.steps, perStepWithRun: full / workload.steps }
    }).pipe(Effect.provide(layer))
  )

export const measure = async () => ({
  memory: await measureOn(Engine.layer().pipe(Layer.provide(EventStore.layerMemory)), 1),
  sqlite: await measureOn(Engine.layer().pipe(Layer.provide(SqliteStore.layer({ filename: freshFile("operations"), synchronous: "normal" }))), 1),
  sqliteConcurrent: await measureOn(
    Engine.layer().pipe(Layer.provide(SqliteStore.layer({ filename: freshFile("operations"), synchronous: "normal" }))),
    workload.concurrency
  )
})
