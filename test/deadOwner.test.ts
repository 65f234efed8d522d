/**
 * Dead owners on this host: a lease whose owner names a process of this host that no longer exists — its
 * pid gone, or reused by another program (a different start time) — is expired at once; a live owner's
 * lease is not. The owner name is the engine's default form, `host/pid.start/random` (EngineOptions.owner).
 */
import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Pipeline, Step } from "@ledgerflow/core"
import { Deferred, Effect, Fiber, Schema, TestClock } from "effect"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { hostname } from "node:os"

/** A process's start time as the kernel counts it: field 22 of /proc/<pid>/stat. */
const startOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19])
}

const ownerName = (pid: number, start: number) => `${hostname()}/${pid}.${start}/a1b2c3`

/** A pid that no process has now: a child's, after it exited. */
const exitedPid = (): number => spawnSync(process.execPath, ["-e", "0"]).pid!

/** The one step's body: the first (worker A's) signals `entered` and holds until `release`; later ones return 2. */
const heldPipeline = (gates: { readonly entered: Deferred.Deferred<void>; readonly release: Deferred.Deferred<void> }, count: { bodies: number }) =>
  Pipeline.make({
    name: "held",
    version: 1,
    input: Schema.Null,
    output: Schema.Number,
    run: () =>
      Step.make({
        name: "work",
        input: Schema.Null,
        output: Schema.Number,
        run: () =>
          Effect.suspend(() => {
            count.bodies += 1
            return count.bodies === 1
              ? Deferred.succeed(gates.entered, undefined).pipe(Effect.zipRight(Deferred.await(gates.release)), Effect.as(1))
              : Effect.succeed(2)
          })
      })(null)
  })

type Held = ReturnType<typeof heldPipeline>

/**
 * Worker A (named `owner`) starts key "k" and holds it inside its one step's body; worker B (this process's
 * default owner) acts on the run with `b`; then A is released. B's outcome, the bodies run, A's exit, and
 * the reasons of the run's resumes.
 */
const scenario = <A, E>(owner: string, b: (pipeline: Held, runId: string) => Effect.Effect<A, E, Engine.Engine>) =>
  Effect.gen(function*() {
    const gates = { entered: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
    const count = { bodies: 0 }
    const pipeline = heldPipeline(gates, count)
    const engineA = yield* Engine.Engine.pipe(Effect.provide(Engine.layer({ owner })))
    const a = yield* Effect.fork(engineA.run(pipeline, null, { key: "k" }))
    yield* Deferred.await(gates.entered)
    const [run] = yield* Engine.runs({ key: "k" })
    const outcome = yield* Effect.either(b(pipeline, run!.runId))
    yield* Deferred.succeed(gates.release, undefined)
    const aExit = yield* Fiber.await(a)
    const events = yield* Engine.events(run!.runId)
    const resumed = events.flatMap((e) => e._tag === "RunResumed" ? [e.reason] : [])
    return { outcome, bodies: count.bodies, aExit, resumed, run: yield* Engine.getRun(run!.runId) }
  }).pipe(Effect.provide(Engine.layer()), Effect.provide(EventStore.layerMemory))

describe("dead owners on this host", () => {
  it.effect("a live owner (this very process, its start time right) keeps its lease: a start by key is told RunInProgress", () =>
    Effect.gen(function*() {
      const { bodies, outcome } = yield* scenario(
        ownerName(process.pid, startOf(process.pid)),
        (pipeline) => Engine.run(pipeline, null, { key: "k" })
      )
      expect(outcome).toMatchObject({ _tag: "Left", left: { _tag: "RunInProgress" } })
      expect(bodies).toBe(1)
    }))

  it.effect("an owner whose pid is gone is expired at once: a start by key takes the run over within the lease", () =>
    Effect.gen(function*() {
      const pid = exitedPid()
      const { aExit, bodies, outcome, resumed, run } = yield* scenario(
        ownerName(pid, 12345),
        (pipeline) => Engine.run(pipeline, null, { key: "k" })
      )
      expect(outcome).toMatchObject({ _tag: "Right", right: 2 })
      expect(bodies).toBe(2)
      expect(resumed).toEqual([expect.stringContaining(`process ${pid} on this host no longer exists`)])
      expect(run).toMatchObject({ status: "completed", leaseToken: 2 })
      // The "dead" worker's late append is refused by the fencing token.
      expect(aExit._tag).toBe("Failure")
    }))

  it.effect("an owner whose pid now belongs to another program (another start time) is expired at once: a resume takes it over", () =>
    Effect.gen(function*() {
      const { bodies, outcome, resumed } = yield* scenario(
        ownerName(process.pid, startOf(process.pid) - 1),
        (pipeline, runId) => Engine.resume(pipeline, runId)
      )
      expect(outcome).toMatchObject({ _tag: "Right", right: 2 })
      expect(bodies).toBe(2)
      expect(resumed).toEqual([expect.stringContaining("the pid now belongs to another program")])
    }))

  it.effect("a resume that waits (ifRunning: \"wait\") for a live owner returns the run's output when it completes, executing nothing", () =>
    Effect.gen(function*() {
      const owner = ownerName(process.pid, startOf(process.pid))
      const { bodies, outcome, resumed } = yield* scenario(owner, (pipeline, runId) =>
        Effect.gen(function*() {
          const refused = yield* Effect.flip(Engine.resume(pipeline, runId))
          expect(refused._tag).toBe("RunInProgress")
          const waiting = yield* Effect.fork(Engine.resume(pipeline, runId, { ifRunning: "wait" }))
          yield* TestClock.adjust("1 second")
          expect(yield* Fiber.poll(waiting)).toEqual(expect.objectContaining({ _tag: "None" }))
          return waiting
        }))
      // The scenario released A after B's part; the waiting resume sees the completion on its next poll.
      expect(outcome._tag).toBe("Right")
      if (outcome._tag !== "Right") return
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(outcome.right)).toBe(1)
      expect(bodies).toBe(1)
      expect(resumed).toEqual([])
    }))
})
