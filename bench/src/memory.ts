/**
 * Memory in the number of runs: one engine and store, runs 16 at a time, RSS and heap used (after a full
 * collection, with `--expose-gc`) sampled as the count grows. Flat means nothing is kept per finished run.
 * synchronous=NORMAL: memory does not depend on fsync, and it keeps this part short.
 */
import { Effect } from "effect"
import * as Ledgerflow from "./ledgerflow.js"
import { freshFile, memory, type Memory, type Sample, startTimer, workload } from "./support.js"

export interface Point extends Memory {
  /** Runs completed on this engine when the sample was taken. */
  readonly runs: number
  /** The throughput of the runs since the previous point: it must not fall as the store grows. */
  readonly stepsPerSec: number | undefined
}

export const measure = (options: { readonly checkpoints: ReadonlyArray<number> }): Promise<ReadonlyArray<Point>> =>
  Effect.runPromise(
    Effect.gen(function*() {
      yield* Ledgerflow.runs("memory-warmup", { to: 100 }, workload.concurrency)
      const points: Array<Point> = [{ runs: 0, stepsPerSec: undefined, ...memory() }]
      let done = 0
      for (const target of options.checkpoints) {
        const stop = startTimer()
        yield* Ledgerflow.runs("memory", { from: done, to: target }, workload.concurrency)
        const sample: Sample = stop((target - done) * workload.steps)
        done = target
        points.push({ runs: done, stepsPerSec: Math.round((sample.items / sample.ms) * 1000), ...memory() })
      }
      return points
    }).pipe(Effect.provide(Ledgerflow.layer(freshFile("memory"), "normal")))
  )
