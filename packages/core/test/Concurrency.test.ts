import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Pipeline, Step } from "@ledgerflow/core"
import { Duration, Effect, Fiber, Layer, Schema } from "effect"
import { FastCheck as fc } from "effect"
import { drive, withTime } from "./fixtures/clock.js"

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
        yield* drive(first, { upTo: Duration.millis(cut) })
        yield* Fiber.interrupt(first)
        const out = yield* withTime(Engine.run(pipeline, delays.length, { key: "fan" }))
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
      const ids = ["ccc", "a", "bb"]
      // enrich[id] completes at 10 ms × id's length: cut before, between and after those moments.
      for (const cut of [0, 10, 15, 25, 30]) {
        const looked: Array<string> = []
        const enriched: Array<string> = []
        const lookup = Step.make({
          name: "lookup",
          input: Schema.String,
          output: Schema.String,
          run: (id) => Effect.sync(() => (looked.push(id), id.toUpperCase()))
        })
        const enrich = Step.make({
          name: "enrich",
          input: Schema.String,
          output: Schema.String,
          run: (v) => Effect.sleep(Duration.millis(v.length * 10)).pipe(Effect.map(() => (enriched.push(v), `${v}!`)))
        })
        const pipeline = Pipeline.make({
          name: "branches",
          version: 1,
          input: Schema.Array(Schema.String),
          output: Schema.Array(Schema.String),
          run: (ids) =>
            Effect.forEach(
              ids,
              // Each branch is keyed by its id, never by which branch happened to call first.
              (id) => Effect.flatMap(lookup(id, { key: id }), (v) => enrich(v, { key: id })),
              { concurrency: "unbounded" }
            )
        })
        yield* Effect.gen(function*() {
          const first = yield* Effect.fork(Engine.run(pipeline, ids, { key: "branches" }))
          yield* drive(first, { upTo: Duration.millis(cut) })
          yield* Fiber.interrupt(first)
          const cutAt = { looked: [...looked].sort(), enriched: [...enriched].sort() }
          expect(cutAt.enriched).toEqual(["A", "BB", "CCC"].filter((v) => v.length * 10 <= cut))
          expect(yield* withTime(Engine.run(pipeline, ids, { key: "branches" }))).toEqual(["CCC!", "A!", "BB!"])
          // The resume served what the cut run finished under the same keys and ran only the rest: every
          // body ran once over both runs.
          expect([...looked].sort()).toEqual(["a", "bb", "ccc"])
          expect([...enriched].sort()).toEqual(["A", "BB", "CCC"])
          const [run] = yield* Engine.runs({ key: "branches" })
          expect(run?.status).toBe("completed")
          const completed = (yield* Engine.events(run!.runId)).flatMap((e) => (e._tag === "StepCompleted" ? [e.stepId] : []))
          expect(completed.sort()).toEqual(["enrich[a]", "enrich[bb]", "enrich[ccc]", "lookup[a]", "lookup[bb]", "lookup[ccc]"])
          const report = yield* Engine.replay(pipeline, run!.runId)
          expect(report.outcome).toBe("identical")
          expect(report.steps.map((s) => s.stepId).sort()).toEqual(completed.sort())
        }).pipe(Effect.provide(EngineMemory))
      }
    }))
})
