import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Failure, Pipeline, RetryPolicy, Step } from "@ledgerflow/core"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Schema } from "effect"
import { withTime } from "./fixtures/clock.js"

const EngineMemory = Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory))

const quick = RetryPolicy.exponential({ base: "10 millis", maxDelay: "100 millis", maxAttempts: 3, maxElapsed: "1 minute", jitter: 0 })

/** The world the pipeline changes: files, rows, paid summaries, e-mails. */
const makeWorld = () => ({
  summaries: 0,
  files: new Set<string>(),
  rows: new Set<number>(),
  mails: [] as Array<string>,
  log: [] as Array<string>,
  compensationKeys: [] as Array<string>
})
type World = ReturnType<typeof makeWorld>

const makeSteps = (world: World, faults: { final: Array<Failure.Failure>; deleteRow: Array<Failure.Failure> }) => ({
  summarize: Step.make({
    name: "summarize",
    input: Schema.String,
    output: Schema.String,
    keepOnRollback: true,
    run: (text) => Effect.sync(() => (world.summaries++, `summary(${text})`))
  }),
  writeFile: Step.make({
    name: "write-file",
    input: Schema.String,
    output: Schema.String,
    run: (summary) => Effect.sync(() => (world.files.add(`${summary}.txt`), `${summary}.txt`)),
    compensate: (file, _, ctx) =>
      Effect.sync(() => {
        world.files.delete(file)
        world.log.push(`delete ${file}`)
        world.compensationKeys.push(ctx.idempotencyKey)
      })
  }),
  insertRow: Step.make({
    name: "insert-row",
    input: Schema.String,
    output: Schema.Number,
    run: () => Effect.sync(() => (world.rows.add(1), 1)),
    compensateRetry: quick,
    compensate: (row, _, ctx) =>
      Effect.suspend(() => {
        const fault = faults.deleteRow.shift()
        if (fault !== undefined) return Effect.fail(fault)
        world.rows.delete(row)
        world.log.push(`delete row ${row}`)
        world.compensationKeys.push(ctx.idempotencyKey)
        return Effect.void
      })
  }),
  final: Step.make({
    name: "final",
    input: Schema.Number,
    output: Schema.String,
    retry: quick,
    run: () =>
      Effect.suspend(() => {
        const fault = faults.final.shift()
        return fault === undefined ? Effect.succeed("done") : Effect.fail(fault)
      })
  })
})

const makePipeline = (world: World, faults: { final: Array<Failure.Failure>; deleteRow: Array<Failure.Failure> }) => {
  const steps = makeSteps(world, faults)
  return Pipeline.make({
    name: "report",
    version: 1,
    input: Schema.String,
    output: Schema.String,
    run: (text) =>
      Effect.gen(function*() {
        const summary = yield* steps.summarize(text)
        const file = yield* steps.writeFile(summary)
        const row = yield* steps.insertRow(file)
        return yield* steps.final(row)
      })
  })
}

const boom = () => Failure.deterministic("webhook rejected the payload (HTTP 422)")
const flaky = () => Failure.transient("HTTP 503")

describe("compensation", () => {
  it.effect("a failed run undoes its completed steps in reverse order, journaled, with stable idempotency keys", () =>
    Effect.gen(function*() {
      const world = makeWorld()
      const pipeline = makePipeline(world, { final: [boom()], deleteRow: [] })
      const error = yield* Effect.flip(Engine.run(pipeline, "q3"))
      expect(error._tag).toBe("Deterministic")
      expect(world.log).toEqual(["delete row 1", "delete summary(q3).txt"])
      expect(world.files.size + world.rows.size).toBe(0)
      const [run] = yield* Engine.runs()
      expect(run!.status).toBe("rolled_back")
      expect(world.compensationKeys).toEqual([
        `${run!.runId}/insert-row#0/compensate`,
        `${run!.runId}/write-file#0/compensate`
      ])
      const types = (yield* Engine.events(run!.runId)).map((e) => e._tag)
      expect(types.slice(-6)).toEqual([
        "RunFailed",
        "CompensationStarted",
        "CompensationCompleted",
        "CompensationStarted",
        "CompensationCompleted",
        "RunRolledBack"
      ])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("after a rollback and a fix, the same key runs again: undone steps re-run, the paid summary is served", () =>
    Effect.gen(function*() {
      const world = makeWorld()
      const faults = { final: [flaky(), flaky(), flaky()], deleteRow: [] as Array<Failure.Failure> }
      const pipeline = makePipeline(world, faults)
      const first = yield* Effect.exit(withTime(Engine.run(pipeline, "q3", { key: "k" })))
      expect(Exit.isFailure(first)).toBe(true)
      expect((yield* Engine.runs())[0]!.status).toBe("rolled_back")
      expect(world.files.size).toBe(0)
      const out = yield* Engine.run(pipeline, "q3", { key: "k" })
      expect(out).toBe("done")
      expect(world.summaries).toBe(1)
      expect([...world.files]).toEqual(["summary(q3).txt"])
      expect([...world.rows]).toEqual([1])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a compensation that fails transiently twice still runs once to effect", () =>
    Effect.gen(function*() {
      const world = makeWorld()
      const pipeline = makePipeline(world, { final: [boom()], deleteRow: [flaky(), flaky()] })
      yield* Effect.exit(withTime(Engine.run(pipeline, "q3")))
      expect(world.log).toEqual(["delete row 1", "delete summary(q3).txt"])
      const [run] = yield* Engine.runs()
      expect(run!.status).toBe("rolled_back")
      const failed = (yield* Engine.events(run!.runId)).filter((e) => e._tag === "CompensationFailed")
      expect(failed.map((e) => [e.stepId, e.attempt, e.retryDelayMs])).toEqual([
        ["insert-row#0", 1, 10],
        ["insert-row#0", 2, 20]
      ])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a compensation that fails deterministically leaves needs_attention; Engine.rollback completes it later", () =>
    Effect.gen(function*() {
      const world = makeWorld()
      const faults = { final: [boom()], deleteRow: [Failure.deterministic("permission denied on reports")] }
      const pipeline = makePipeline(world, faults)
      yield* Effect.exit(Engine.run(pipeline, "q3"))
      const [run] = yield* Engine.runs()
      expect(run!.status).toBe("needs_attention")
      // Nothing after the failed compensation ran: the file is still there, waiting its turn.
      expect(world.files.size).toBe(1)
      const state = yield* Effect.flatMap(Engine.Engine, (e) => e.state(run!.runId))
      expect(state.status).toBe("needs_attention")
      const report = yield* Engine.rollback(pipeline, run!.runId)
      expect(report).toMatchObject({ status: "rolled_back", compensated: ["insert-row#0", "write-file#0"], pending: [] })
      expect(world.files.size + world.rows.size).toBe(0)
      expect(world.summaries).toBe(1)
      expect((yield* Engine.getRun(run!.runId)).status).toBe("rolled_back")
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a compensation that throws instead of returning an effect fails like a defect: journaled, and the run needs attention", () =>
    Effect.gen(function*() {
      const world = makeWorld()
      const write = Step.make({
        name: "write-file",
        input: Schema.String,
        output: Schema.String,
        run: (name) => Effect.sync(() => (world.files.add(name), name)),
        compensate: (file): Effect.Effect<void> => {
          throw new TypeError(`cannot delete ${file}: the bucket client is undefined`)
        }
      })
      const pipeline = Pipeline.make({
        name: "throwing-undo",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        run: (name) => Effect.zipRight(write(name), Effect.fail(boom()))
      })
      const exit = yield* Effect.exit(Engine.run(pipeline, "q3.txt"))
      expect(Exit.isFailure(exit)).toBe(true)
      const [run] = yield* Engine.runs({ pipeline: "throwing-undo" })
      expect(run!.status).toBe("needs_attention")
      const failed = (yield* Engine.events(run!.runId)).filter((e) => e._tag === "CompensationFailed")
      expect(failed.map((e) => [e.stepId, e.attempt, e.failure._tag])).toEqual([["write-file#0", 1, "Deterministic"]])
      expect(failed[0]!.failure.reason).toContain("the bucket client is undefined")
      expect(world.files.size).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("rolling back a completed or unknown run is a clear error", () =>
    Effect.gen(function*() {
      const pipeline = makePipeline(makeWorld(), { final: [], deleteRow: [] })
      yield* Engine.run(pipeline, "q3")
      const [run] = yield* Engine.runs()
      const completed = yield* Effect.flip(Engine.rollback(pipeline, run!.runId))
      expect(completed).toMatchObject({ _tag: "RunNotResumable", status: "completed" })
      const unknown = yield* Effect.flip(Engine.rollback(pipeline, "run_nope"))
      expect(unknown._tag).toBe("RunNotFound")
      // The library says what is wrong; the CLI adds the command to type (`packages/cli/test/errors.test.ts`).
      expect(unknown.message).toBe("no run has the id run_nope")
    }).pipe(Effect.provide(EngineMemory)))
})

describe("irreversible steps", () => {
  /**
   * With `hang`, the first send hangs (the test then interrupts it as a worker dying mid-send): after the
   * provider accepted the message, or — `hangBeforeSending` — before it did.
   */
  const makeMailer = (
    sent: Array<string>,
    options: { hang?: Deferred.Deferred<void>; hangBeforeSending?: boolean; reconcile?: boolean; reconciled?: Array<string> }
  ) => {
    let calls = 0
    return Step.make({
      name: "send-mail",
      input: Schema.String,
      output: Schema.String,
      irreversible: true,
      run: (to, ctx) => {
        calls += 1
        const send = Effect.sync(() => (sent.push(`${to} ${ctx.idempotencyKey}`), `message-${sent.length}`))
        if (options.hang === undefined || calls > 1) return send
        const hang = Effect.zipRight(Deferred.succeed(options.hang, undefined), Effect.never)
        return options.hangBeforeSending === true ? hang : Effect.zipRight(send, hang)
      },
      ...(options.reconcile === true
        ? {
          reconcile: (to: string, key: string) =>
            Effect.sync(() => {
              const found = sent.find((s) => s === `${to} ${key}`)
              options.reconciled?.push(key)
              return found === undefined ? Option.none() : Option.some("message-found")
            })
        }
        : {})
    })
  }

  const mailPipeline = (mailer: ReturnType<typeof makeMailer>, world: World, after: Array<Failure.Failure> = []) => {
    const steps = makeSteps(world, { final: after, deleteRow: [] })
    return Pipeline.make({
      name: "mail",
      version: 1,
      input: Schema.String,
      output: Schema.String,
      run: (to) =>
        Effect.gen(function*() {
          const file = yield* steps.writeFile(to)
          const id = yield* mailer(to)
          yield* steps.final(1)
          return `${file} ${id}`
        })
    })
  }

  it.effect("an irreversible step's run is called only once its start is in the store", () =>
    Effect.gen(function*() {
      const order: Array<string> = []
      // The memory store, telling what it stored and when.
      const store = Layer.effect(
        EventStore.EventStore,
        Effect.map(EventStore.EventStore, (base): EventStore.EventStoreService => ({
          ...base,
          append: (request) =>
            Effect.tap(base.append(request), () =>
              Effect.sync(() => request.events.forEach((e) => order.push(`stored ${e.type}`))))
        }))
      ).pipe(Layer.provide(EventStore.layerMemory))
      const send = Step.make({
        name: "send-mail",
        input: Schema.String,
        output: Schema.String,
        irreversible: true,
        // A `run` with a side effect before its effect: a mistake, but it must not come before the start.
        run: (to) => {
          order.push("run called")
          return Effect.succeed(`sent to ${to}`)
        }
      })
      const pipeline = Pipeline.make({ name: "mailer", version: 1, input: Schema.String, output: Schema.String, run: send })
      yield* Engine.run(pipeline, "ops@example.com").pipe(
        Effect.provide(Engine.layer().pipe(Layer.provide(store)))
      )
      expect(order).toEqual(["stored StepStarted", "run called", "stored StepCompleted", "stored RunCompleted"])
    }))

  it.effect("a crash between its start and its outcome leaves the run needs_attention without reconcile: never a blind resend", () =>
    Effect.gen(function*() {
      const sent: Array<string> = []
      const hang = yield* Deferred.make<void>()
      const pipeline = mailPipeline(makeMailer(sent, { hang }), makeWorld())
      const fiber = yield* Effect.fork(Engine.run(pipeline, "ops@acme.test", { key: "m" }))
      yield* Deferred.await(hang)
      yield* Fiber.interrupt(fiber) // the worker dies mid-send
      const error = yield* Effect.flip(Engine.run(pipeline, "ops@acme.test", { key: "m" }))
      expect(error).toMatchObject({ _tag: "Deterministic", rule: "in-doubt" })
      expect(sent.length).toBe(1)
      const [run] = yield* Engine.runs()
      expect(run!.status).toBe("needs_attention")
      const again = yield* Effect.flip(Engine.run(pipeline, "ops@acme.test", { key: "m" }))
      expect(again._tag).toBe("RunNotResumable")
      expect(sent.length).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("with reconcile, an in-doubt send that happened is journaled as done; one that did not is sent with the same key", () =>
    Effect.gen(function*() {
      for (const happened of [true, false]) {
        yield* Effect.gen(function*() {
          const sent: Array<string> = []
          const reconciled: Array<string> = []
          const hang = yield* Deferred.make<void>()
          const mailer = makeMailer(sent, { hang, hangBeforeSending: !happened, reconcile: true, reconciled })
          const pipeline = mailPipeline(mailer, makeWorld())
          const fiber = yield* Effect.fork(Engine.run(pipeline, "ops@acme.test", { key: "m" }))
          yield* Deferred.await(hang)
          yield* Fiber.interrupt(fiber) // the worker dies mid-send
          expect(sent.length).toBe(happened ? 1 : 0)
          const out = yield* Engine.run(pipeline, "ops@acme.test", { key: "m" })
          const [run] = yield* Engine.runs()
          const key = `${run!.runId}/send-mail#0`
          // Asked once, with the send's idempotency key.
          expect(reconciled).toEqual([key])
          // One message either way: the one the dead worker sent, or the one the resume sent with its key.
          expect(sent).toEqual([`ops@acme.test ${key}`])
          expect(out).toBe(happened ? "ops@acme.test.txt message-found" : "ops@acme.test.txt message-1")
          expect(run!.status).toBe("completed")
        }).pipe(Effect.provide(EngineMemory))
      }
    }))

  it.effect("past the pivot, a failure does not undo earlier steps and a deterministic one needs attention", () =>
    Effect.gen(function*() {
      const sent: Array<string> = []
      const world = makeWorld()
      const pipeline = mailPipeline(makeMailer(sent, {}), world, [boom()])
      yield* Effect.exit(Engine.run(pipeline, "ops@acme.test"))
      expect(world.files.size).toBe(1)
      expect(world.log).toEqual([])
      const [run] = yield* Engine.runs()
      expect(run!.status).toBe("needs_attention")
    }).pipe(Effect.provide(EngineMemory)))

  it("a compensate on an irreversible step is refused when the step is defined", () => {
    expect(() =>
      Step.make({
        name: "pay",
        output: Schema.String,
        irreversible: true,
        run: () => Effect.succeed("ok"),
        compensate: () => Effect.void
      })
    ).toThrow(/irreversible and has a compensate/)
  })

  it.effect("a reconcile that returns the wrong shape is a Schema error naming the step", () =>
    Effect.gen(function*() {
      const hang = yield* Deferred.make<void>()
      let first = true
      const mailer = Step.make({
        name: "send-mail",
        input: Schema.String,
        output: Schema.Struct({ id: Schema.String }),
        irreversible: true,
        run: () => first ? Effect.zipRight(Effect.sync(() => (first = false)), Effect.zipRight(Deferred.succeed(hang, undefined), Effect.never)) : Effect.succeed({ id: "x" }),
        // @ts-expect-error a reconcile written against an old output shape, as untyped code could
        reconcile: () => Effect.succeed(Option.some({ messageId: 7 }))
      })
      const pipeline = Pipeline.make({ name: "m", version: 1, input: Schema.String, output: Schema.String, run: (to) => Effect.map(mailer(to), (r) => r.id) })
      const fiber = yield* Effect.fork(Engine.run(pipeline, "a@b.c", { key: "m" }))
      yield* Deferred.await(hang)
      yield* Fiber.interrupt(fiber)
      const error = yield* Effect.flip(Engine.run(pipeline, "a@b.c", { key: "m" }))
      expect(error).toMatchObject({ _tag: "Deterministic", rule: "schema" })
      expect((error as Failure.Deterministic).reason).toContain("reconcile of step send-mail#0")
    }).pipe(Effect.provide(EngineMemory)))
})

describe("storm breaker and preflight", () => {
  const stormPipeline = (version: number, calls: { llm: number; insert: number }, columnExists: () => boolean) => {
    const llm = Step.make({ name: "llm", input: Schema.Number, output: Schema.String, run: (i) => Effect.sync(() => (calls.llm++, `answer ${i}`)) })
    const insert = Step.make({
      name: "insert",
      input: Schema.String,
      output: Schema.Number,
      run: () =>
        Effect.suspend(() => {
          calls.insert++
          return columnExists()
            ? Effect.succeed(1)
            : Effect.fail(Failure.deterministic(`SqliteError: table batch_results has no column named score (run ${calls.insert})`))
        })
    })
    return Pipeline.make({
      name: "batch",
      version,
      input: Schema.Number,
      output: Schema.Number,
      run: (n) => Effect.flatMap(Effect.forEach([1, 2, 3, 4, 5], (i) => llm(i * n)), (answers) => insert(answers.join(",")))
    })
  }

  it.effect("21 redeliveries of a deterministic failure with new keys: 3 runs execute, the rest get CircuitOpen; a version bump runs again", () =>
    Effect.gen(function*() {
      const calls = { llm: 0, insert: 0 }
      let migrated = false
      const v1 = stormPipeline(1, calls, () => migrated)
      const outcomes: Array<string> = []
      for (let delivery = 1; delivery <= 21; delivery++) {
        const exit = yield* Effect.either(Engine.run(v1, 7, { key: `delivery-${delivery}` }))
        outcomes.push(exit._tag === "Left" ? exit.left._tag : "ok")
      }
      expect(outcomes.slice(0, 3)).toEqual(["Deterministic", "Deterministic", "Deterministic"])
      expect(outcomes.slice(3)).toEqual(Array.from({ length: 18 }, () => "CircuitOpen"))
      expect(calls).toEqual({ llm: 15, insert: 3 })
      const open = yield* Effect.flip(Engine.run(v1, 7, { key: "delivery-22" }))
      expect(open.message).toContain("storm breaker")
      expect(open.message).toContain("has no column named score")
      migrated = true
      expect(yield* Engine.run(stormPipeline(2, calls, () => migrated), 7, { key: "delivery-23" })).toBe(1)
      // Or, for the same version, a reset closes it.
      yield* Engine.resetBreaker(v1)
      expect(yield* Engine.run(v1, 7, { key: "delivery-24" })).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a failing preflight fails the run deterministically before any step runs", () =>
    Effect.gen(function*() {
      let ran = 0
      const step = Step.make({ name: "paid", output: Schema.Number, run: () => Effect.sync(() => ++ran) })
      const pipeline = Pipeline.make({
        name: "guarded",
        version: 1,
        input: Schema.Null,
        output: Schema.Number,
        preflight: Effect.fail(new Error("column reports.region does not exist")),
        run: () => step()
      })
      const error = yield* Effect.flip(Engine.run(pipeline, null))
      expect(error).toMatchObject({ _tag: "Deterministic", rule: "preflight" })
      expect((error as Failure.Deterministic).reason).toContain("before any step ran")
      expect(ran).toBe(0)
    }).pipe(Effect.provide(EngineMemory)))
})


