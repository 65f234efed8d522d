/**
 * Recovery reports what happened: a run past its pivot only goes forward — `recover` resumes it whatever
 * its `onCrash`, an explicit `rollback` is refused with `PastPivot` and leaves it as it was — and every
 * report states the run's real status.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Failure, Pipeline, RetryPolicy, RunError, Step } from "@ledgerflow/core"
import { Deferred, Effect, Fiber, Layer, Schema, TestClock } from "effect"

const EngineMemory = Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory))

/** write a file (undone on rollback) → send an e-mail (irreversible) → finish, which fails, hangs or succeeds as told. */
const makeWorld = (onCrash: "resume" | "rollback") =>
  Effect.gen(function*() {
    const world = {
      files: new Set<string>(),
      mails: 0,
      finish: "ok" as "ok" | "fail" | "hang",
      entered: yield* Deferred.make<void>()
    }
    const writeFile = Step.make({
      name: "write-file",
      input: Schema.String,
      output: Schema.String,
      run: (name) => Effect.sync(() => (world.files.add(name), name)),
      compensate: (name) => Effect.sync(() => void world.files.delete(name))
    })
    const sendEmail = Step.make({
      name: "send-email",
      input: Schema.String,
      output: Schema.String,
      irreversible: true,
      run: () => Effect.sync(() => (world.mails++, "sent"))
    })
    const finish = Step.make({
      name: "finish",
      output: Schema.String,
      run: () =>
        Effect.suspend(() =>
          world.finish === "fail"
            ? Effect.fail(Failure.deterministic("the report table is missing"))
            : world.finish === "hang"
            ? Effect.zipRight(Deferred.succeed(world.entered, undefined), Effect.never)
            : Effect.succeed("done")
        )
    })
    const pipeline = Pipeline.make({
      name: "report-and-mail",
      version: 1,
      input: Schema.String,
      output: Schema.String,
      onCrash,
      run: (name) =>
        Effect.gen(function*() {
          yield* writeFile(name)
          yield* sendEmail(name)
          return yield* finish()
        })
    })
    return { world, pipeline }
  })

describe("recovery and rollback past the pivot", () => {
  it.effect("an explicit rollback of a run past its pivot is refused with PastPivot naming the irreversible step, the run left as it was", () =>
    Effect.gen(function*() {
      const { pipeline, world } = yield* makeWorld("resume")
      world.finish = "fail"
      const failure = yield* Effect.flip(Engine.run(pipeline, "report.txt"))
      assert(Failure.isFailure(failure))
      const runId = failure.runId!
      const before = yield* Engine.getRun(runId)
      const eventsBefore = (yield* Engine.events(runId)).length
      const refused = yield* Effect.flip(Engine.rollback(pipeline, runId))
      assert(refused instanceof RunError.PastPivot)
      expect(refused).toMatchObject({ runId, stepId: "send-email#0", status: before.status })
      expect(refused.message).toMatch(/resume it/)
      const after = yield* Engine.getRun(runId)
      expect(after.status).toBe(before.status)
      expect(after.leaseToken).toBe(before.leaseToken)
      expect((yield* Engine.events(runId)).length).toBe(eventsBefore)
      expect([...world.files]).toEqual(["report.txt"])
      expect(world.mails).toBe(1)
      // It goes forward: a resume after the fix completes it without a second e-mail.
      world.finish = "ok"
      expect(yield* Engine.resume(pipeline, runId)).toBe("done")
      expect(world.mails).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("recover with onCrash rollback resumes a crashed run past its pivot to completion, and says so", () =>
    Effect.gen(function*() {
      const { pipeline, world } = yield* makeWorld("rollback")
      world.finish = "hang"
      const fiber = yield* Effect.fork(Engine.run(pipeline, "report.txt"))
      yield* Deferred.await(world.entered)
      // The worker goes away mid-run (its lease released, as on a stopped process): the run stays `running`.
      yield* Fiber.interrupt(fiber)
      const [crashed] = yield* Engine.runs()
      expect(crashed!.status).toBe("running")
      world.finish = "ok"
      const recovered = yield* Engine.recover([pipeline])
      expect(recovered).toEqual([
        { runId: crashed!.runId, pipeline: "report-and-mail", action: "resumed", outcome: "ok", status: "completed" }
      ])
      expect((yield* Engine.getRun(crashed!.runId)).status).toBe("completed")
      expect([...world.files]).toEqual(["report.txt"])
      expect(world.mails).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("recover with onCrash rollback still rolls back a crashed run before its pivot, reporting rolled_back", () =>
    Effect.gen(function*() {
      const { pipeline, world } = yield* makeWorld("rollback")
      const hangFirst = Step.make({
        name: "hang-first",
        output: Schema.Null,
        run: () => Effect.zipRight(Deferred.succeed(world.entered, undefined), Effect.never)
      })
      const early = Pipeline.make({
        name: "report-and-mail",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        onCrash: "rollback",
        run: (name) => Effect.zipRight(hangFirst(), pipeline.run(name))
      })
      const fiber = yield* Effect.fork(Engine.run(early, "report.txt"))
      yield* Deferred.await(world.entered)
      yield* Fiber.interrupt(fiber)
      const recovered = yield* Engine.recover([early])
      expect(recovered.map((r) => [r.action, r.outcome, r.status])).toEqual([["rolled back", "ok", "rolled_back"]])
      expect(world.mails).toBe(0)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a rollback asked to wait for a live lease waits for the run, then reports its real status", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const files = new Set<string>()
      const writeFile = Step.make({
        name: "write-file",
        input: Schema.String,
        output: Schema.String,
        run: (name) => Effect.sync(() => (files.add(name), name)),
        compensate: (name) => Effect.sync(() => void files.delete(name))
      })
      const insert = Step.make({
        name: "insert-row",
        output: Schema.Number,
        run: () =>
          Effect.zipRight(
            Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(release)),
            Effect.fail(Failure.transient("the database is restarting"))
          ),
        retry: RetryPolicy.exponential({ base: "10 millis", maxDelay: "10 millis", maxAttempts: 1, maxElapsed: "1 minute", jitter: 0 })
      })
      const pipeline = Pipeline.make({
        name: "waited",
        version: 1,
        input: Schema.String,
        output: Schema.Number,
        run: (name) => Effect.zipRight(writeFile(name), insert())
      })
      const running = yield* Effect.fork(Engine.run(pipeline, "a.txt"))
      yield* Deferred.await(entered)
      const [run] = yield* Engine.runs()
      expect((yield* Effect.flip(Engine.rollback(pipeline, run!.runId)))._tag).toBe("RunInProgress")
      const waiting = yield* Effect.fork(Engine.rollback(pipeline, run!.runId, { ifRunning: "wait" }))
      yield* TestClock.adjust("1 second")
      yield* Deferred.succeed(release, undefined)
      const failed = yield* Effect.flip(Fiber.join(running))
      expect(failed).toMatchObject({ _tag: "Transient", runId: run!.runId, stepId: "insert-row#0" })
      yield* TestClock.adjust("2 seconds")
      const report = yield* Fiber.join(waiting)
      expect(report.status).toBe("rolled_back")
      expect((yield* Engine.getRun(run!.runId)).status).toBe("rolled_back")
      expect([...files]).toEqual([])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("recover skips a run under a live lease by default, and with ifRunning wait reports how its owner finished it", () =>
    Effect.gen(function*() {
      const { pipeline, world } = yield* makeWorld("resume")
      const release = yield* Deferred.make<void>()
      const gated = Pipeline.make({
        name: "report-and-mail",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        run: (name) => Effect.zipRight(Deferred.await(release), pipeline.run(name))
      })
      const running = yield* Effect.fork(Engine.run(gated, "report.txt"))
      yield* Effect.yieldNow()
      const [run] = yield* Engine.runs()
      expect(yield* Engine.recover([gated])).toEqual([])
      const waiting = yield* Effect.fork(Engine.recover([gated], { ifRunning: "wait" }))
      yield* TestClock.adjust("1 second")
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(running)).toBe("done")
      yield* TestClock.adjust("2 seconds")
      const recovered = yield* Fiber.join(waiting)
      expect(recovered.map((r) => [r.runId, r.action, r.status])).toEqual([[run!.runId, "skipped", "completed"]])
      expect(world.mails).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))
})
