import { assert, describe, expect, it } from "@effect/vitest"
import { Engine, Event, EventStore, Failure, Pipeline, RetryPolicy, Step } from "@ledgerflow/core"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { withTime } from "./fixtures/clock.js"
import { createHash } from "node:crypto"

/** The input hash the engine journals: sha256 of the encoded input's JSON, 32 hex digits. */
const hashOf = (encoded: unknown) => createHash("sha256").update(JSON.stringify(encoded)).digest("hex").slice(0, 32)

const fast = RetryPolicy.exponential({
  base: "100 millis",
  maxDelay: "1 second",
  maxAttempts: 5,
  maxElapsed: "1 minute",
  jitter: 0
})

/** Counters of step-body executions, i.e. of what a real pipeline would pay for. */
const makeCounters = () => ({ fetch: 0, summarize: 0, write: 0, insert: 0, webhook: 0 })

interface Faults {
  webhook: Array<Failure.Failure>
  insert: Array<Failure.Failure>
}

/** The seed's 5-step pipeline: fetch → summarize (a paid call) → write file → insert row → webhook. */
const seedPipeline = (counters: ReturnType<typeof makeCounters>, faults: Faults) => {
  const fetch = Step.make({
    name: "fetch",
    input: Schema.Struct({ account: Schema.String }),
    output: Schema.Struct({ rows: Schema.Number }),
    retry: fast,
    run: ({ account }) => Effect.sync(() => (counters.fetch++, { rows: account.length * 100 }))
  })
  const summarize = Step.make({
    name: "summarize",
    input: Schema.Struct({ rows: Schema.Number }),
    output: Schema.String,
    retry: fast,
    run: ({ rows }) => Effect.sync(() => (counters.summarize++, `summary of ${rows} rows`))
  })
  const write = Step.make({
    name: "write-file",
    input: Schema.String,
    output: Schema.String,
    retry: fast,
    run: (summary) => Effect.sync(() => (counters.write++, `s3://reports/${summary.length}.txt`))
  })
  const insert = Step.make({
    name: "insert-row",
    input: Schema.String,
    output: Schema.Number,
    retry: fast,
    run: () =>
      Effect.suspend(() => {
        counters.insert++
        const fault = faults.insert.shift()
        return fault === undefined ? Effect.succeed(42) : Effect.fail(fault)
      })
  })
  const webhook = Step.make({
    name: "webhook",
    input: Schema.Number,
    output: Schema.Literal("sent"),
    retry: fast,
    run: () =>
      Effect.suspend(() => {
        counters.webhook++
        const fault = faults.webhook.shift()
        return fault === undefined ? Effect.succeed("sent" as const) : Effect.fail(fault)
      })
  })
  return Pipeline.make({
    name: "ad-report",
    version: 1,
    input: Schema.Struct({ account: Schema.String }),
    output: Schema.Struct({ file: Schema.String, row: Schema.Number }),
    run: (input) =>
      Effect.gen(function*() {
        const data = yield* fetch(input)
        const summary = yield* summarize(data)
        const file = yield* write(summary)
        const row = yield* insert(file)
        yield* webhook(row)
        return { file, row }
      })
  })
}

const unavailable = () => Failure.transient("HTTP 503 from the webhook", { rule: "http-status" })

const EngineMemory = Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory))


describe("Engine", () => {
  it.effect("the seed: a webhook that fails transiently twice is retried and the summary is paid once", () =>
    Effect.gen(function*() {
      const counters = makeCounters()
      const pipeline = seedPipeline(counters, { webhook: [unavailable(), unavailable()], insert: [] })
      const out = yield* withTime(Engine.run(pipeline, { account: "acme" }))
      expect(out).toEqual({ file: "s3://reports/19.txt", row: 42 })
      expect(counters).toEqual({ fetch: 1, summarize: 1, write: 1, insert: 1, webhook: 3 })
      const events = yield* Engine.events((yield* Engine.runs())[0]!.runId)
      const failed = events.filter((e) => e._tag === "StepAttemptFailed")
      expect(failed.map((e) => [e.stepId, e.attempt, e.failure._tag, e.retryDelayMs])).toEqual([
        ["webhook#0", 1, "Transient", 100],
        ["webhook#0", 2, "Transient", 200]
      ])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a step whose run throws instead of returning an effect fails its attempt, journaled and classified, like a defect of its effect", () =>
    Effect.gen(function*() {
      let calls = 0
      const broken = Step.make({
        name: "broken",
        input: Schema.Number,
        output: Schema.Number,
        retry: fast,
        run: (n): Effect.Effect<number> => {
          calls++
          throw new TypeError(`cannot read properties of undefined (reading 'rows') at input ${n}`)
        }
      })
      const pipeline = Pipeline.make({
        name: "throws",
        version: 1,
        input: Schema.Number,
        output: Schema.Number,
        run: (n) => broken(n)
      })
      const exit = yield* withTime(Effect.exit(Engine.run(pipeline, 7)))
      assert(Exit.isFailure(exit))
      const failure = Option.getOrThrow(Cause.failureOption(exit.cause))
      expect(failure).toMatchObject({ _tag: "Deterministic", stepId: "broken#0" })
      expect((failure as Failure.Failure).reason).toContain("reading 'rows'")
      expect(calls).toBe(1)
      const events = yield* Engine.events((yield* Engine.runs({ pipeline: "throws" }))[0]!.runId)
      expect(events.filter((e) => e._tag === "StepAttemptFailed").map((e) => [e.stepId, e.attempt, e.failure._tag]))
        .toEqual([["broken#0", 1, "Deterministic"]])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a pipeline whose run throws instead of returning an effect fails the run, journaled, not left running", () =>
    Effect.gen(function*() {
      const pipeline = Pipeline.make({
        name: "throws-at-once",
        version: 1,
        input: Schema.Number,
        output: Schema.Number,
        run: (n): Effect.Effect<number> => {
          throw new TypeError(`cannot read properties of undefined (reading 'rows') at input ${n}`)
        }
      })
      const exit = yield* withTime(Effect.exit(Engine.run(pipeline, 7)))
      assert(Exit.isFailure(exit))
      const failure = Option.getOrThrow(Cause.failureOption(exit.cause))
      expect(failure).toMatchObject({ _tag: "Deterministic" })
      expect((failure as Failure.Failure).reason).toContain("reading 'rows'")
      const [run] = yield* Engine.runs({ pipeline: "throws-at-once" })
      expect(run).toMatchObject({ status: "failed", failureClass: "deterministic" })
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a deterministic failure is not retried and is returned, naming its run and step, to 21 further starts with the same key", () =>
    Effect.gen(function*() {
      const counters = makeCounters()
      const missingColumn = Failure.deterministic("SqliteError: no such column: region", { rule: "sqlite-code" })
      const pipeline = seedPipeline(counters, { webhook: [], insert: [missingColumn] })
      const first = yield* Effect.exit(Engine.run(pipeline, { account: "acme" }, { key: "batch-7" }))
      // The failure names the run it ended and the step that failed: found again by key, and resumable as is.
      const found = yield* Engine.lookup(pipeline, "batch-7")
      assert(Option.isSome(found))
      const named = Failure.inRun(missingColumn, found.value.runId, "insert-row#0")
      expect(named).toMatchObject({ runId: found.value.runId, stepId: "insert-row#0", reason: missingColumn.reason })
      expect(first).toEqual(Exit.fail(named))
      expect(counters).toEqual({ fetch: 1, summarize: 1, write: 1, insert: 1, webhook: 0 })
      for (let i = 0; i < 21; i++) {
        const again = yield* Effect.exit(Engine.run(pipeline, { account: "acme" }, { key: "batch-7" }))
        expect(again).toEqual(Exit.fail(named))
      }
      expect(counters).toEqual({ fetch: 1, summarize: 1, write: 1, insert: 1, webhook: 0 })
      const [run] = yield* Engine.runs({ key: "batch-7" })
      expect(run).toMatchObject({ status: "failed", failureClass: "deterministic" })
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a run whose retries ran out on a transient failure is resumed by the next start from the log", () =>
    Effect.gen(function*() {
      const counters = makeCounters()
      const outage = Array.from({ length: 5 }, unavailable)
      const pipeline = seedPipeline(counters, { webhook: outage, insert: [] })
      const first = yield* Effect.exit(withTime(Engine.run(pipeline, { account: "acme" })))
      expect(Exit.isFailure(first)).toBe(true)
      expect(counters.webhook).toBe(5)
      const second = yield* Engine.run(pipeline, { account: "acme" })
      expect(second.row).toBe(42)
      expect(counters).toEqual({ fetch: 1, summarize: 1, write: 1, insert: 1, webhook: 6 })
      const [run] = yield* Engine.runs()
      const events = yield* Engine.events(run!.runId)
      const served = events.flatMap((e) => (e._tag === "StepsServed" ? e.stepIds : []))
      expect(served).toEqual(["fetch#0", "summarize#0", "write-file#0", "insert-row#0"])
      expect(run!.status).toBe("completed")
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a completed run returns its stored output and executes nothing", () =>
    Effect.gen(function*() {
      const counters = makeCounters()
      const pipeline = seedPipeline(counters, { webhook: [], insert: [] })
      const a = yield* Engine.run(pipeline, { account: "acme" })
      const b = yield* Engine.run(pipeline, { account: "acme" })
      expect(b).toEqual(a)
      expect(counters.summarize).toBe(1)
      expect((yield* Engine.runs()).length).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("input that does not match the pipeline's Schema is refused naming the field, nothing written", () =>
    Effect.gen(function*() {
      const pipeline = seedPipeline(makeCounters(), { webhook: [], insert: [] })
      // @ts-expect-error the wrong input type, as a caller without types would send it
      const error = yield* Effect.flip(Engine.run(pipeline, { account: 7 }))
      expect(error._tag).toBe("InvalidInput")
      expect(error.message).toContain("account")
      expect(yield* Engine.runs()).toEqual([])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("an unusable key is refused with what to do, nothing written", () =>
    Effect.gen(function*() {
      const pipeline = seedPipeline(makeCounters(), { webhook: [], insert: [] })
      const error = yield* Effect.flip(Engine.run(pipeline, { account: "a" }, { key: "bad\nkey" }))
      expect(error._tag).toBe("InvalidKey")
      expect(error.message).toContain("control characters")
      expect(yield* Engine.runs()).toEqual([])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("replay serves every step from the log and runs no body", () =>
    Effect.gen(function*() {
      const counters = makeCounters()
      const pipeline = seedPipeline(counters, { webhook: [], insert: [] })
      yield* Engine.run(pipeline, { account: "acme" })
      const [run] = yield* Engine.runs()
      const report = yield* Engine.replay(pipeline, run!.runId.slice(0, 12))
      expect(report.outcome).toBe("identical")
      expect(report.steps.map((s) => [s.stepId, s.outcome])).toEqual([
        ["fetch#0", "served"],
        ["summarize#0", "served"],
        ["write-file#0", "served"],
        ["insert-row#0", "served"],
        ["webhook#0", "served"]
      ])
      expect(counters).toEqual({ fetch: 1, summarize: 1, write: 1, insert: 1, webhook: 1 })
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a damaged completion is reported when it is served: resume and replay fail naming the event, nothing re-runs", () =>
    Effect.gen(function*() {
      const counters = makeCounters()
      const missingColumn = Failure.deterministic("SqliteError: no such column: region", { rule: "sqlite-code" })
      const pipeline = seedPipeline(counters, { webhook: [], insert: [missingColumn] })
      yield* Effect.exit(Engine.run(pipeline, { account: "acme" }))
      const [original] = yield* Engine.runs()
      // The same log under another run, with the body of summarize's completion cut short (a damaged file).
      const store = yield* EventStore.EventStore
      const log = yield* store.readEvents(original!.runId)
      const damagedSeq = log.find((e) => e.step?.stepId === "summarize#0")!.seq
      const copy = log.map(({ at, data, seq, step, type, v }) => ({
        type,
        v,
        at,
        data: seq === damagedSeq ? data.slice(0, 30) : data,
        ...(step !== undefined ? { step } : {})
      }))
      yield* store.claim({ ...original!, runId: "run_copy", key: "copy", now: 1, events: copy.slice(0, 2) })
      yield* store.append({ runId: "run_copy", token: 1, events: copy.slice(2), patch: { status: "failed" }, now: 2 })

      // The fold does not read completion bodies: the run's state is there, the damage found when served.
      expect([...(yield* Engine.state("run_copy")).steps.keys()]).toEqual(["fetch#0", "summarize#0", "write-file#0", "insert-row#0"])
      const resumed = yield* Effect.flip(Engine.resume(pipeline, "run_copy"))
      expect(resumed).toMatchObject({
        _tag: "UnknownEvent",
        runId: "run_copy",
        seq: damagedSeq,
        message: `event #${damagedSeq} (StepCompleted) of run run_copy is not valid JSON`
      })
      const replayed = yield* Effect.flip(Engine.replay(pipeline, "run_copy"))
      expect(replayed).toMatchObject({ _tag: "UnknownEvent", seq: damagedSeq })
      expect((yield* Effect.flip(Engine.events("run_copy")))._tag).toBe("UnknownEvent")
      expect(counters).toEqual({ fetch: 1, summarize: 1, write: 1, insert: 1, webhook: 0 })
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a changed step input is a divergence: replay reports it, resume refuses unless told to re-execute", () =>
    Effect.gen(function*() {
      let suffix = ""
      let bodies = 0
      const greet = Step.make({
        name: "greet",
        input: Schema.String,
        output: Schema.String,
        run: (name) => Effect.sync(() => (bodies++, `hello ${name}`))
      })
      const fail = Step.make({
        name: "fail",
        output: Schema.Void,
        run: () => Effect.fail(Failure.deterministic("boom"))
      })
      const pipeline = Pipeline.make({
        name: "greeter",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        run: (name) =>
          Effect.gen(function*() {
            const g = yield* greet(name + suffix)
            if (suffix === "") yield* fail()
            return g
          })
      })
      yield* Effect.exit(Engine.run(pipeline, "ada"))
      const [run] = yield* Engine.runs()
      suffix = "!"
      const report = yield* Engine.replay(pipeline, run!.runId)
      expect(report.outcome).toBe("diverged")
      expect(report.steps[0]).toMatchObject({ stepId: "greet#0", outcome: "diverged" })
      const refused = yield* Effect.flip(Engine.resume(pipeline, run!.runId))
      expect(refused._tag).toBe("StepDiverged")
      expect(bodies).toBe(1)
      const out = yield* Engine.resume(pipeline, run!.runId, { reexecuteDiverged: true })
      expect(out).toBe("hello ada!")
      expect(bodies).toBe(2)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a run under a live lease is RunInProgress; when its worker lets go, another start resumes it", () =>
    Effect.gen(function*() {
      const engineA = yield* Engine.Engine.pipe(Effect.provide(Engine.layer({ owner: "worker-a" })))
      const engineB = yield* Engine.Engine.pipe(Effect.provide(Engine.layer({ owner: "worker-b" })))
      const started = yield* Deferred.make<void>()
      let firstBodies = 0
      let hang = true
      const first = Step.make({ name: "first", output: Schema.Number, run: () => Effect.sync(() => ++firstBodies) })
      const block = Step.make({
        name: "block",
        output: Schema.Number,
        run: () =>
          hang
            ? Effect.zipRight(Deferred.succeed(started, undefined), Effect.sync(() => (hang = false)).pipe(Effect.zipRight(Effect.never)))
            : Effect.succeed(2)
      })
      const pipeline = Pipeline.make({
        name: "two",
        version: 1,
        input: Schema.Null,
        output: Schema.Number,
        run: () => Effect.zipWith(first(), block(), (a, b) => a + b)
      })
      const fiberA = yield* Effect.fork(engineA.run(pipeline, null, { key: "k" }))
      yield* Deferred.await(started)
      const busy = yield* Effect.flip(engineB.run(pipeline, null, { key: "k" }))
      expect(busy).toMatchObject({ _tag: "RunInProgress", owner: "worker-a" })
      yield* Fiber.interrupt(fiberA)
      expect(yield* engineB.run(pipeline, null, { key: "k" })).toBe(3)
      expect(firstBodies).toBe(1)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("a run whose worker died is taken over once its lease expires, and the dead worker's appends are refused", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const pipeline = seedPipeline(makeCounters(), { webhook: [], insert: [] })
      const input = { account: "acme" }
      // A worker claimed the run at t=0 with a 30 s lease, then died without a word.
      const claim = yield* store.claim({
        runId: "run_dead",
        pipeline: "ad-report",
        version: "1",
        key: "k",
        owner: "dead-worker",
        now: 0,
        leaseExpiresAt: 30_000,
        events: [Event.encode(new Event.RunStarted({ at: 0, pipeline: "ad-report", version: "1", key: "k", input, inputHash: hashOf(input) }))]
      })
      expect(claim._tag).toBe("Created")
      const engine = yield* Engine.Engine.pipe(Effect.provide(Engine.layer({ owner: "worker-b" })))
      expect((yield* Effect.flip(engine.run(pipeline, input, { key: "k" })))._tag).toBe("RunInProgress")
      yield* TestClock.adjust("31 seconds")
      expect((yield* engine.run(pipeline, input, { key: "k" })).row).toBe(42)
      const stale = yield* Effect.flip(store.append({
        runId: "run_dead",
        token: 1,
        now: 31_000,
        events: [Event.encode(new Event.RunCancelled({ at: 31_000, reason: "late" }))]
      }))
      expect(stale._tag).toBe("LeaseLost")
      const run = yield* engine.getRun("run_dead")
      expect(run).toMatchObject({ status: "completed", owner: "worker-b", leaseToken: 2 })
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.scoped("a worker whose lease renewal is refused (the run was taken over) stops its step at once with LeaseLost", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      // Built in the test's scope, as an application's layer would be: its lease keeper runs until the scope ends.
      const engine = Context.get(yield* Layer.build(Engine.layer({ owner: "worker-a" })), Engine.Engine)
      const started = yield* Deferred.make<void>()
      let interrupted = false
      let after = 0
      const slow = Step.make({
        name: "slow",
        output: Schema.Number,
        run: () => Deferred.succeed(started, undefined).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true)))
        )
      })
      const next = Step.make({ name: "next", output: Schema.Number, run: () => Effect.sync(() => ++after) })
      const pipeline = Pipeline.make({
        name: "slow",
        version: 1,
        input: Schema.Null,
        output: Schema.Number,
        run: () => Effect.zipWith(slow(), next(), (a, b) => a + b)
      })
      const fiber = yield* Effect.fork(engine.run(pipeline, null, { key: "k" }))
      yield* Deferred.await(started)
      // Renewed on the keeper's first tick (a third of the 30 s lease): still worker-a's.
      yield* TestClock.adjust("10 seconds")
      const [run] = yield* engine.runs({ pipeline: "slow" })
      expect(run).toMatchObject({ owner: "worker-a", leaseExpiresAt: 40_000 })
      // Another worker takes the run over (as after a long pause of this one).
      yield* store.acquire({
        runId: run!.runId,
        expectedToken: 1,
        owner: "worker-b",
        now: 10_000,
        leaseExpiresAt: 60_000,
        requireExpired: false,
        events: () => []
      })
      yield* TestClock.adjust("10 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toMatchObject({ _tag: "LeaseLost", runId: run!.runId })
      expect(interrupted).toBe(true)
      expect(after).toBe(0)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("an engine used outside its layer's scope still renews the leases of the runs it executes", () =>
    Effect.gen(function*() {
      // The layer's scope ends here, with its keeper: each run then keeps its own lease.
      const engine = yield* Engine.Engine.pipe(Effect.provide(Engine.layer({ owner: "worker-a" })))
      const started = yield* Deferred.make<void>()
      const slow = Step.make({
        name: "slow",
        output: Schema.Number,
        run: () => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.never))
      })
      const pipeline = Pipeline.make({ name: "slow", version: 1, input: Schema.Null, output: Schema.Number, run: () => slow() })
      const fiber = yield* Effect.fork(engine.run(pipeline, null, { key: "k" }))
      yield* Deferred.await(started)
      yield* TestClock.adjust("10 seconds")
      const [run] = yield* engine.runs({ pipeline: "slow" })
      expect(run).toMatchObject({ owner: "worker-a", leaseExpiresAt: 40_000 })
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(EventStore.layerMemory)))
})
