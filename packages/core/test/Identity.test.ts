/**
 * No silent wrong answers: a key is bound to its input, a step's identity is exact, what is journaled comes
 * back, and a failure keeps its identity and names its run.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Failure, Pipeline, RunError, Step } from "@ledgerflow/core"
import { Data, Effect, Layer, Option, Schema } from "effect"

const EngineMemory = Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory))

const account = Schema.Struct({ account: Schema.String })

/** A report of one account; `paid` counts the bodies that ran. */
const reportPipeline = (paid: { n: number }) => {
  const fetch = Step.make({
    name: "fetch",
    input: account,
    output: Schema.String,
    run: ({ account }) => Effect.sync(() => (paid.n++, `${account}-payload`))
  })
  return Pipeline.make({ name: "cpc-report", version: 1, input: account, output: Schema.String, run: fetch })
}

describe("a key is bound to its input", () => {
  it.effect("a start with another input under a used key is refused with KeyConflict, nothing executed, never the other output", () =>
    Effect.gen(function*() {
      const paid = { n: 0 }
      const pipeline = reportPipeline(paid)
      expect(yield* Engine.run(pipeline, { account: "acme" }, { key: "acme-2026-12" })).toBe("acme-payload")
      const error = yield* Effect.flip(Engine.run(pipeline, { account: "globex" }, { key: "acme-2026-12" }))
      assert(error instanceof RunError.KeyConflict)
      const run = Option.getOrThrow(yield* Engine.lookup(pipeline, "acme-2026-12"))
      expect(error).toMatchObject({ pipeline: "cpc-report", key: "acme-2026-12", runId: run.runId })
      expect(error.storedInputHash).not.toBe(error.inputHash)
      expect(error.message).toContain(run.runId)
      expect(error.message).toMatch(/new key/)
      expect(paid.n).toBe(1)
      // The run's own input under its key is still answered from the log.
      expect(yield* Engine.run(pipeline, { account: "acme" }, { key: "acme-2026-12" })).toBe("acme-payload")
      expect(paid.n).toBe(1)
      expect(yield* Engine.runs()).toHaveLength(1)
    }).pipe(Effect.provide(EngineMemory)))
})

describe("a step's identity is exact", () => {
  it.effect("two different steps with one name are refused with DuplicateStepName at the second one's first call", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const users = Step.make({ name: "fetch", output: Schema.String, run: () => Effect.sync(() => (ran.push("users"), "users-payload")) })
      const orders = Step.make({ name: "fetch", output: Schema.String, run: () => Effect.sync(() => (ran.push("orders"), "orders-payload")) })
      const pipeline = Pipeline.make({
        name: "two-fetches",
        version: 1,
        input: Schema.Null,
        output: Schema.String,
        run: () => Effect.zipWith(users(), orders(), (u, o) => `users=${u} orders=${o}`)
      })
      const error = yield* Effect.flip(Engine.run(pipeline, null))
      assert(error instanceof Step.DuplicateStepName)
      expect(error).toMatchObject({ name: "fetch", stepId: "fetch#1" })
      expect(error.runId).toMatch(/^run_/)
      expect(ran).toEqual(["users"])
      // The same step value called twice is two occurrences of one step: fine.
      const twice = Pipeline.make({
        name: "one-fetch-twice",
        version: 1,
        input: Schema.Null,
        output: Schema.String,
        run: () => Effect.zipWith(users(), users(), (a, b) => `${a}+${b}`)
      })
      expect(yield* Engine.run(twice, null)).toBe("users-payload+users-payload")
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("an explicit key matches only that key: a resume with other keys runs the steps, a replay is not identical", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      let keys = ["k1", "k2"]
      let fail = true
      const fetch = Step.make({
        name: "fetch",
        input: Schema.String,
        output: Schema.String,
        run: (id) => Effect.sync(() => (ran.push(id), `payload-${id}`))
      })
      const finish = Step.make({
        name: "finish",
        output: Schema.String,
        run: () => fail ? Effect.fail(Failure.deterministic("not yet")) : Effect.succeed("done")
      })
      const pipeline = Pipeline.make({
        name: "fan-out",
        version: 1,
        input: Schema.Null,
        output: Schema.Array(Schema.String),
        run: () =>
          Effect.gen(function*() {
            // The same inputs under fresh keys each time.
            const out = yield* Effect.forEach(["a", "b"], (id, i) => fetch(id, { key: keys[i]! }))
            yield* finish()
            return out
          })
      })
      const failure = yield* Effect.flip(Engine.run(pipeline, null))
      assert(Failure.isFailure(failure))
      keys = ["k3", "k4"]
      const replay = yield* Engine.replay(pipeline, failure.runId!)
      expect(replay.outcome).not.toBe("identical")
      expect(replay.steps[0]).toMatchObject({ stepId: "fetch[k3]", outcome: "not-in-journal" })
      fail = false
      expect(yield* Engine.resume(pipeline, failure.runId!)).toEqual(["payload-a", "payload-b"])
      // Nothing was served under a key it was not journaled with.
      expect(ran).toEqual(["a", "b", "a", "b"])
    }).pipe(Effect.provide(EngineMemory)))

  /** Two calls of `fetch` made by concurrent branches (or one after the other), in the order `order` says. */
  const orderedPipeline = (order: { first: "x" | "y" }, concurrent: boolean) => {
    const ran: Array<string> = []
    const fetch = Step.make({
      name: "fetch",
      input: Schema.String,
      output: Schema.String,
      run: (id) => Effect.sync(() => (ran.push(id), `payload-${id}`))
    })
    // The branch that goes second yields a few times first, so the other one calls `fetch` before it.
    const branch = (id: "x" | "y") =>
      Effect.zipRight(Effect.forEach(Array.from({ length: order.first === id ? 0 : 5 }), () => Effect.yieldNow()), fetch(id))
    const pipeline = Pipeline.make({
      name: concurrent ? "concurrent" : "sequential",
      version: 1,
      input: Schema.Null,
      output: Schema.String,
      run: () =>
        concurrent
          ? Effect.map(Effect.all([branch("x"), branch("y")], { concurrency: "unbounded" }), ([x, y]) => `${x}|${y}`)
          : order.first === "x"
          ? Effect.zipWith(fetch("x"), fetch("y"), (x, y) => `${x}|${y}`)
          : Effect.zipWith(fetch("y"), fetch("x"), (y, x) => `${x}|${y}`)
    })
    return { pipeline, ran }
  }

  it.effect("concurrent calls that start in another order are served their own outputs, and replay reports them reordered", () =>
    Effect.gen(function*() {
      const order: { first: "x" | "y" } = { first: "x" }
      const { pipeline, ran } = orderedPipeline(order, true)
      expect(yield* Engine.run(pipeline, null)).toBe("payload-x|payload-y")
      const [run] = yield* Engine.runs()
      order.first = "y"
      const report = yield* Engine.replay(pipeline, run!.runId)
      expect(report.outcome).toBe("reordered")
      expect(report.steps.map((s) => [s.stepId, s.outcome, s.servedFrom])).toEqual([
        ["fetch#0", "reordered", "fetch#1"],
        ["fetch#1", "reordered", "fetch#0"]
      ])
      expect(ran).toEqual(["x", "y"])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("sequential calls in another order are a divergence, never served another occurrence's completion", () =>
    Effect.gen(function*() {
      const order: { first: "x" | "y" } = { first: "x" }
      const { pipeline } = orderedPipeline(order, false)
      expect(yield* Engine.run(pipeline, null)).toBe("payload-x|payload-y")
      const [run] = yield* Engine.runs()
      order.first = "y"
      const report = yield* Engine.replay(pipeline, run!.runId)
      expect(report.outcome).toBe("diverged")
      expect(report.steps[0]).toMatchObject({ stepId: "fetch#0", outcome: "diverged" })
    }).pipe(Effect.provide(EngineMemory)))
})

describe("what is journaled must come back", () => {
  const outputOf = <A, I>(name: string, output: Schema.Schema<A, I>, value: () => A) => {
    const ran = { n: 0 }
    const step = Step.make({ name, output, run: () => Effect.sync(() => (ran.n++, value())) })
    const pipeline = Pipeline.make({
      name: `journal-${name}`,
      version: 1,
      input: Schema.Null,
      output: Schema.Null,
      run: () => Effect.as(step(), null)
    })
    return { pipeline, ran }
  }

  const cases = [
    { name: "nan", make: () => outputOf("nan", Schema.Struct({ avg: Schema.Number }), () => ({ avg: NaN })), says: /at \.avg: NaN/ },
    {
      name: "date-unknown",
      make: () => outputOf("date-unknown", Schema.Unknown, () => ({ when: new Date(0) })),
      says: /at \.when: a Date/
    },
    {
      name: "date-from-self",
      make: () => outputOf("date-from-self", Schema.DateFromSelf, () => new Date(0)),
      says: /at the value itself: a Date/
    },
    { name: "bigint", make: () => outputOf("bigint", Schema.Any, () => [1, 2n]), says: /at \[1\]: a BigInt/ },
    { name: "map", make: () => outputOf("map", Schema.Unknown, () => new Map([["a", 1]])), says: /a Map/ },
    {
      name: "undefined-in-array",
      make: () => outputOf("undefined-in-array", Schema.Array(Schema.UndefinedOr(Schema.Number)), () => [1, undefined]),
      says: /does not decode again/
    }
  ] as const

  for (const c of cases) {
    it.effect(`an output JSON cannot carry (${c.name}) fails Deterministic on the first run, naming the step and the path`, () =>
      Effect.gen(function*() {
        const { pipeline, ran } = c.make()
        const failure = yield* Effect.flip(Engine.run(pipeline, null))
        assert(Failure.isDeterministic(failure))
        expect(failure.rule).toBe("journal")
        expect(failure.stepId).toBe(`${c.name}#0`)
        expect(failure.reason).toContain(`step ${c.name}#0`)
        expect(failure.reason).toMatch(c.says)
        expect(ran.n).toBe(1)
        const completions = (yield* Engine.events(failure.runId!)).filter((e) => e._tag === "StepCompleted")
        expect(completions).toEqual([])
      }).pipe(Effect.provide(EngineMemory)))
  }

  it.effect("plain JSON outputs, Schema-encoded Dates and a Void output are journaled and served back equal", () =>
    Effect.gen(function*() {
      const ran = { n: 0 }
      const step = Step.make({
        name: "plain",
        output: Schema.Struct({ at: Schema.Date, n: Schema.Number, tags: Schema.Array(Schema.String), note: Schema.optional(Schema.String) }),
        run: () => Effect.sync(() => (ran.n++, { at: new Date(5), n: 1.5, tags: ["a"], note: undefined }))
      })
      const nothing = Step.make({ name: "nothing", output: Schema.Void, run: () => Effect.void })
      let fail = true
      const last = Step.make({
        name: "last",
        output: Schema.Null,
        run: () => fail ? Effect.fail(Failure.deterministic("later")) : Effect.succeed(null)
      })
      const pipeline = Pipeline.make({
        name: "plain",
        version: 1,
        input: Schema.Null,
        output: Schema.Number,
        run: () => Effect.gen(function*() {
          const out = yield* step()
          yield* nothing()
          yield* last()
          return out.at.getTime()
        })
      })
      const failure = yield* Effect.flip(Engine.run(pipeline, null))
      assert(Failure.isFailure(failure))
      expect(failure.stepId).toBe("last#0")
      fail = false
      expect(yield* Engine.resume(pipeline, failure.runId!)).toBe(5)
      expect(ran.n).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))
})

class NotFound extends Data.TaggedError("NotFound")<{ readonly id: string; readonly attempts: number; readonly at: Date }> {}

describe("a failure keeps its identity and names its run", () => {
  it.effect("a step's own tagged error comes back with its _tag and JSON-safe fields, its run and step, to every start", () =>
    Effect.gen(function*() {
      let bodies = 0
      const load = Step.make({
        name: "load",
        input: Schema.String,
        output: Schema.String,
        run: (id) => Effect.suspend(() => (bodies++, Effect.fail(new NotFound({ id, attempts: 2, at: new Date(0) }))))
      })
      const pipeline = Pipeline.make({ name: "loader", version: 1, input: Schema.String, output: Schema.String, run: load })
      const first = yield* Effect.flip(Engine.run(pipeline, "42", { key: "load-42" }))
      assert(Failure.isDeterministic(first))
      expect(Failure.errorTag(first)).toBe("NotFound")
      // The Date is not JSON-safe: left out rather than changed.
      expect(first.cause?.fields).toEqual({ id: "42", attempts: 2 })
      const run = Option.getOrThrow(yield* Engine.lookup(pipeline, "load-42"))
      expect(first).toMatchObject({ runId: run.runId, stepId: "load#0" })
      const again = yield* Effect.flip(Engine.run(pipeline, "42", { key: "load-42" }))
      expect(again).toEqual(first)
      expect(bodies).toBe(1)
      // Every event of the run comes with its place in the log.
      const events = yield* Engine.events(run.runId)
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
      expect(Option.isNone(yield* Engine.lookup(pipeline, "no-such-key"))).toBe(true)
    }).pipe(Effect.provide(EngineMemory)))
})
