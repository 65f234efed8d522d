/**
 * The engine's work counted, not timed: the Effect operations its fibers run for the shared workload's
 * pipeline, on the memory store (the engine alone) and on SQLite, sequential and 16 at a time. A
 * supervisor sees every operation the run loop executes (`RuntimeFlags.OpSupervision`); the count does not
 * move with the machine's load, so it shows a change to the step path where the timed rows only hint at
 * one. Runs with and without steps separate a run's own operations from each step's.
 */
import { Engine, EventStore } from "@ledgerflow/core"
import { Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import * as Ledgerflow from "./ledgerflow.js"
import { freshFile, workload } from "./support.js"

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
    // The bench's pipeline with its first `count` steps (0: a run with no step).
    const pipeline = Ledgerflow.makePipeline({ name: `operations-${count}`, steps: count })
    yield* Ledgerflow.runs("warm", { to: runs }, concurrency, pipeline)
    const counter = new Counter()
    yield* Ledgerflow.runs("counted", { to: runs }, concurrency, pipeline).pipe(
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
  sqlite: await measureOn(Ledgerflow.layer(freshFile("operations"), "normal"), 1),
  sqliteConcurrent: await measureOn(Ledgerflow.layer(freshFile("operations"), "normal"), workload.concurrency)
})
