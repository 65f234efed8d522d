import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Pipeline, Step } from "@ledgerflow/core"
import { Duration, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { FastCheck as fc } from "effect"

const EngineMemory = Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory))

/**
 * A fan-out whose branches finish in an order set by random delays. Identities are taken when each call
 * starts, in program order, so a resume after any cut serves exactly the steps that completed.
 */
const fanOut = (delays: ReadonlyArray<number>, concurrency: number, completions: Array<number>) => {
  const work = Step.make({
    name: "work",
    input: Schema.Number,
    output: Schema.Number,
    run: (i) =>
      Effect.sleep(Duration.millis(delays[i] ?? 0)).pipe(
        Effect.map(() => {
          completions[i] = (completions[i] ?? 0) + 1
          return i * 10
        })
      )
  })
  return Pipeline.make({
    name: "fan-out",
    version: 1,
    input: Schema.Number,
    output: Schema.Array(Schema.Number),
    run: (n) => Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => work(i), { concurrency })
  })
}

describe("concurrent steps", () => {
  it.effect.prop(
    "a run cut at any moment of a concurrent section resumes serving exactly the completed steps, whatever order they finished in",
    {
      delays: fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 12 }),
      concurrency: fc.integer({ min: 1, max: 12 }),
      cut: fc.integer({ min: 0, max: 1500 })
    },
    ({ concurrency, cut, delays }) =>
      Effect.gen(function*() {
        const completions: Array<number> = []
        const pipeline = fanOut(delays, concurrency, completions)
        const first = yield* Effect.fork(Engine.run(pipeline, delays.length, { key: "fan" }))
        yield* TestClock.adjust(Duration.millis(cut))
        yield* Fiber.interrupt(first)
        const resumed = yield* Effect.fork(Engine.run(pipeline, delays.length, { key: "fan" }))
        yield* TestClock.adjust("1 hour")
        const out = yield* Fiber.join(resumed)
        expect(out).toEqual(delays.map((_, i) => i * 10))
        // No step body completed twice: what the cut run finished was served, the rest ran once.
        expect(delays.map((_, i) => completions[i] ?? 0)).toEqual(delays.map(() => 1))
        const [run] = yield* Engine.runs({ key: "fan" })
        const report = yield* Engine.replay(pipeline, run!.runId)
        expect(report.outcome).toBe("identical")
        expect(report.steps.map((s) => s.stepId)).toEqual(delays.map((_, i) => `work#${i}`))
      }).pipe(Effect.provide(EngineMemory)),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect("steps in concurrent branches with explicit keys keep their identity across a resume", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const lookup = Step.make({
        name: "lookup",
        input: Schema.String,
        output: Schema.String,
        run: (id) => Effect.sync(() => (seen.push(id), id.toUpperCase()))
      })
      const enrich = Step.make({
        name: "enrich",
        input: Schema.String,
        output: Schema.String,
        run: (v) => Effect.sleep(Duration.millis(v.length * 10)).pipe(Effect.as(`${v}!`))
      })
      const pipeline = Pipeline.make({
        name: "branches",
        version: 1,
        input: Schema.Array(Schema.String),
        output: Schema.Array(Schema.String),
        run: (ids) =>
          Effect.forEach(
            ids,
            (id) => Effect.flatMap(lookup(id, { key: id }), (v) => enrich(v, { key: id })),
            { concurrency: "unbounded" }
          )
      })
      const fiber = yield* Effect.fork(Engine.run(pipeline, ["ccc", "a", "bb"]))
      yield* TestClock.adjust("1 minute")
      expect(yield* Fiber.join(fiber)).toEqual(["CCC!", "A!", "BB!"])
      const [run] = yield* Engine.runs()
      const report = yield* Engine.replay(pipeline, run!.runId)
      expect(report.outcome).toBe("identical")
      expect(report.steps.map((s) => s.stepId).sort()).toEqual(
        ["enrich[a]", "enrich[bb]", "enrich[ccc]", "lookup[a]", "lookup[bb]", "lookup[ccc]"]
      )
      expect(seen.sort()).toEqual(["a", "bb", "ccc"])
    }).pipe(Effect.provide(EngineMemory)))
})
