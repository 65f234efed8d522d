/**
 * The `EventStore` conformance suite: what every adapter must do, checked against the in-memory reference
 * store and each real one. Each test gets a fresh store from `makeLayer`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Event, EventStore, Failure, Journal, Usage } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"

const pipeline = "reports"

const runStarted = (at: number, key: string) =>
  Event.encode(new Event.RunStarted({ at, pipeline, version: "1", key, input: { key }, inputHash: `hash-${key}` }))

const leaseTaken = (at: number, owner: string, token: number, expiresAt: number) =>
  Event.encode(new Event.LeaseTaken({ at, owner, token, expiresAt }))

const stepCompleted = (at: number, stepId: string) =>
  Event.encode(
    new Event.StepCompleted({
      at,
      stepId,
      name: stepId,
      inputHash: `input-${stepId}`,
      attempt: 1,
      startedAt: at - 1,
      output: { summary: `output of ${stepId}`, unicode: "é ✓ 😀" }
    })
  )

/**
 * One step's history as the engine writes it: failed attempts, then maybe a completion (with usage when
 * paid). Names may hold any UTF-16, lone surrogates included: a text column must not change them.
 */
const stepHistory = FastCheck.record({
  name: FastCheck.string({
    unit: FastCheck.oneof(FastCheck.string({ unit: "binary", minLength: 1, maxLength: 1 }), FastCheck.constantFrom("\uD83D", "\uDE00")),
    minLength: 1,
    maxLength: 6
  }),
  failures: FastCheck.integer({ min: 0, max: 2 }),
  completes: FastCheck.boolean(),
  paid: FastCheck.boolean(),
  output: FastCheck.jsonValue({ maxDepth: 2 })
})

const historyEvents = (
  histories: ReadonlyArray<typeof stepHistory extends FastCheck.Arbitrary<infer A> ? A : never>
): Array<Event.Event> =>
  histories.flatMap(({ completes, failures, name, output, paid }, i) => {
    const stepId = `${name}#${i}`
    const base = { stepId, name, inputHash: `hash-${name}` }
    const usage = [new Usage.Usage({ model: "claude-x", inputTokens: 10 + i, outputTokens: 5 })]
    return [
      ...Array.from({ length: failures }, (_, a) =>
        new Event.StepAttemptFailed({
          ...base,
          at: 2_000 + 10 * a,
          attempt: a + 1,
          startedAt: 1_995 + 10 * a,
          failure: Failure.transient(`attempt ${a + 1} of ${stepId}`),
          retryDelayMs: 5
        })),
      ...(completes
        ? [
          new Event.StepCompleted({
            ...base,
            at: 3_000 + i,
            attempt: failures + 1,
            startedAt: 2_990 + i,
            output,
            ...(paid ? { usage } : {})
          })
        ]
        : [])
    ]
  })

/** A fold's state with each completion's output read (from the log when it was folded from its columns). */
const withOutputs = (state: Journal.RunState, bodies?: ReadonlyMap<number, string>) => ({
  ...state,
  steps: [...state.steps.entries()].map(([stepId, entry]) => [stepId, {
    ...entry,
    completed: entry.completed && { ...entry.completed, output: Journal.readOutput(entry.completed.output, bodies) }
  }])
})

const claimRequest = (
  runId: string,
  key: string,
  overrides: Partial<EventStore.ClaimRequest> = {}
): EventStore.ClaimRequest => ({
  runId,
  pipeline,
  version: "1",
  key,
  owner: "worker-1",
  now: 1_000,
  leaseExpiresAt: 31_000,
  events: [runStarted(1_000, key), leaseTaken(1_000, "worker-1", 1, 31_000)],
  ...overrides
})

/**
 * Fork `wait` and return once it is parked on the TestClock (one more sleep than before: an interrupted
 * sleep stays in the TestClock's list), with nothing left to do but be woken or time out. Each round lets
 * the event loop run, so a store's I/O (a query, a LISTEN) completes meanwhile.
 */
export const forkParked = <A, E, R>(wait: Effect.Effect<A, E, R>): Effect.Effect<Fiber.RuntimeFiber<A, E>, never, R> =>
  Effect.gen(function*() {
    const before = (yield* TestClock.sleeps()).length
    const fiber = yield* Effect.fork(wait)
    while ((yield* TestClock.sleeps()).length === before) {
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    return fiber
  })

const failure = { failureClass: "deterministic", failureFingerprint: "fp-1", failureReason: "column x does not exist" }

export const conformance = (
  name: string,
  makeLayer: () => Layer.Layer<EventStore.EventStore, unknown>
): void => {
  describe(`EventStore conformance: ${name}`, () => {
    const test = (title: string, body: Effect.Effect<void, unknown, EventStore.EventStore>) =>
      it.effect(title, () => Effect.provide(body, makeLayer()))

    /** Claims a fresh run (2 events, token 1) and returns it. */
    const created = (runId: string, key: string, overrides: Partial<EventStore.ClaimRequest> = {}) =>
      Effect.flatMap(EventStore.EventStore, (store) => store.claim(claimRequest(runId, key, overrides))).pipe(
        Effect.map((result) => {
          expect(result._tag).toBe("Created")
          return result.run
        })
      )

    const getRun = (runId: string) =>
      Effect.flatMap(EventStore.EventStore, (store) => store.getRun(runId)).pipe(Effect.map(Option.getOrThrow))

    test(
      "a claim creates the run with its first events, and a second claim of the key reports it Existing, counting its delivery, writing no event",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const request = claimRequest("run-1", "key-1", { parentRunId: "parent-1", correlationId: "thread-9" })
        const first = yield* store.claim(request)
        expect(first._tag).toBe("Created")
        expect(first.run).toEqual({
          runId: "run-1",
          pipeline,
          version: "1",
          key: "key-1",
          status: "running",
          createdAt: 1_000,
          updatedAt: 1_000,
          lastSeq: 2,
          owner: "worker-1",
          leaseToken: 1,
          leaseExpiresAt: 31_000,
          parentRunId: "parent-1",
          correlationId: "thread-9",
          deliveries: 1,
          lastDeliveredAt: 1_000
        })
        expect(yield* getRun("run-1")).toEqual(first.run)
        expect(yield* store.readEvents("run-1")).toEqual(
          request.events.map((event, i) => ({ runId: "run-1", seq: i + 1, ...event }))
        )

        const second = yield* store.claim(claimRequest("run-2", "key-1", { owner: "worker-2", now: 5_000 }))
        expect(second._tag).toBe("Existing")
        expect(second.run).toEqual({ ...first.run, deliveries: 2, lastDeliveredAt: 5_000 })
        expect(yield* getRun("run-1")).toEqual(second.run)
        expect(yield* store.readEvents("run-1")).toHaveLength(2)
        expect(yield* store.getRun("run-2")).toEqual(Option.none())
        expect(yield* store.readEvents("run-2")).toEqual([])
        expect(Option.getOrThrow(yield* store.findByKey(pipeline, "key-1")).runId).toBe("run-1")
        expect(yield* store.findByKey(pipeline, "key-2")).toEqual(Option.none())
        expect(yield* store.findByKey("other-pipeline", "key-1")).toEqual(Option.none())
      })
    )

    test(
      "deliver counts a redelivery on the run; an answered one appends its events unless the run is running",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const redelivered = (at: number) => [Event.encode(new Event.RunRedelivered({ at }))]
        // Running: an owner may be appending, so the answered events are left out; the delivery is counted.
        const running = yield* store.deliver({ runId: "run-1", now: 2_000, answered: redelivered(2_000) })
        expect(running).toMatchObject({ deliveries: 2, lastDeliveredAt: 2_000, lastSeq: 2, status: "running" })
        expect(yield* store.readEvents("run-1")).toHaveLength(2)
        yield* store.append({ runId: "run-1", token: 1, now: 3_000, events: [stepCompleted(3_000, "a")], patch: { status: "failed", failure } })
        const answered = yield* store.deliver({ runId: "run-1", now: 4_000, answered: redelivered(4_000) })
        expect(answered).toMatchObject({ deliveries: 3, lastDeliveredAt: 4_000, lastSeq: 4, status: "failed", leaseToken: 1 })
        expect(answered.failureFingerprint).toBe("fp-1")
        const events = yield* store.readEvents("run-1")
        expect(events.map((e) => [e.seq, e.type])).toEqual([[1, "RunStarted"], [2, "LeaseTaken"], [3, "StepCompleted"], [4, "RunRedelivered"]])
        // Counted without events: no write to the log. An earlier time does not move the last delivery back.
        const counted = yield* store.deliver({ runId: "run-1", now: 3_500 })
        expect(counted).toMatchObject({ deliveries: 4, lastDeliveredAt: 4_000, lastSeq: 4 })
        expect(yield* getRun("run-1")).toEqual(counted)
        // The token still fences appends: a delivery took no lease.
        expect(yield* store.append({ runId: "run-1", token: 1, now: 5_000, events: [stepCompleted(5_000, "b")] })).toBe(5)
        const missing = yield* Effect.flip(store.deliver({ runId: "run-none", now: 1 }))
        expect(missing._tag).toBe("StoreError")
      })
    )

    test(
      "deliveries counted at once, by claims and redeliveries, are all counted",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        yield* Effect.all(
          Array.from({ length: 20 }, (_, i) =>
            i % 2 === 0
              ? store.deliver({ runId: "run-1", now: 2_000 + i })
              : store.claim(claimRequest(`run-x${i}`, "key-1", { now: 2_000 + i }))),
          { concurrency: "unbounded" }
        )
        expect(yield* getRun("run-1")).toMatchObject({ deliveries: 21, lastDeliveredAt: 2_019 })
        expect(yield* store.listRuns({})).toHaveLength(1)
      })
    )

    test(
      "the same key in another pipeline is another run",
      Effect.gen(function*() {
        yield* created("run-1", "key-1")
        yield* created("run-2", "key-1", { pipeline: "invoices" })
        const store = yield* EventStore.EventStore
        expect(Option.getOrThrow(yield* store.findByKey("invoices", "key-1")).runId).toBe("run-2")
      })
    )

    test(
      "two claims of one key at once: exactly one is Created, the other sees that run",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const results = yield* Effect.all(
          [store.claim(claimRequest("run-a", "key-1")), store.claim(claimRequest("run-b", "key-1"))],
          { concurrency: "unbounded" }
        )
        const winners = results.filter((r) => r._tag === "Created")
        expect(winners).toHaveLength(1)
        const winner = winners[0]!.run.runId
        expect(results.map((r) => r.run.runId)).toEqual([winner, winner])
        expect(yield* store.readEvents(winner)).toHaveLength(2)
        expect(yield* store.listRuns({})).toHaveLength(1)
      })
    )

    test(
      "append assigns consecutive seqs with no gaps and returns the last one",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const events = [stepCompleted(2_000, "a"), stepCompleted(2_001, "b"), stepCompleted(2_002, "c")]
        expect(yield* store.append({ runId: "run-1", token: 1, events, now: 2_002 })).toBe(5)
        expect(yield* store.append({ runId: "run-1", token: 1, events: [stepCompleted(3_000, "d")], now: 3_000 }))
          .toBe(6)
        // An empty append changes nothing; a patch moves the update time (a status change).
        expect(yield* store.append({ runId: "run-1", token: 1, events: [], now: 3_400 })).toBe(6)
        expect(yield* store.append({ runId: "run-1", token: 1, events: [], now: 3_500, patch: { status: "running" } }))
          .toBe(6)
        const log = yield* store.readEvents("run-1")
        expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6])
        expect(log.slice(2)).toEqual(
          [...events, stepCompleted(3_000, "d")].map((event, i) => ({ runId: "run-1", seq: i + 3, ...event }))
        )
        const run = yield* getRun("run-1")
        expect(run.lastSeq).toBe(6)
        expect(run.updatedAt).toBe(3_500)
        expect(run.createdAt).toBe(1_000)
        expect(run.status).toBe("running")
      })
    )

    test(
      "an append with a stale token fails with LeaseLost and writes nothing",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const before = yield* getRun("run-1")
        const error = yield* Effect.flip(
          store.append({
            runId: "run-1",
            token: 7,
            events: [stepCompleted(2_000, "a")],
            patch: { status: "completed" },
            now: 2_000
          })
        )
        expect(error._tag).toBe("LeaseLost")
        if (error._tag === "LeaseLost") {
          expect(error.runId).toBe("run-1")
          expect(error.token).toBe(7)
        }
        expect(yield* getRun("run-1")).toEqual(before)
        expect(yield* store.readEvents("run-1")).toHaveLength(2)

        const unknown = yield* Effect.flip(store.append({ runId: "nope", token: 1, events: [], now: 2_000 }))
        expect(unknown._tag).toBe("LeaseLost")
      })
    )

    test(
      "an append whose expectedSeq is not the last seq fails with SeqConflict and writes nothing",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const error = yield* Effect.flip(
          store.append({ runId: "run-1", token: 1, expectedSeq: 1, events: [stepCompleted(2_000, "a")], now: 2_000 })
        )
        expect(error).toMatchObject({ _tag: "SeqConflict", runId: "run-1", expectedSeq: 1, actualSeq: 2 })
        expect((yield* getRun("run-1")).lastSeq).toBe(2)
        expect(yield* store.readEvents("run-1")).toHaveLength(2)
        expect(
          yield* store.append({ runId: "run-1", token: 1, expectedSeq: 2, events: [stepCompleted(2_000, "a")], now: 2_000 })
        ).toBe(3)
      })
    )

    test(
      "a stale token is reported as LeaseLost even when expectedSeq is also wrong",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const error = yield* Effect.flip(
          store.append({ runId: "run-1", token: 2, expectedSeq: 9, events: [stepCompleted(2_000, "a")], now: 2_000 })
        )
        expect(error._tag).toBe("LeaseLost")
      })
    )

    test(
      "a patch sets status and failure in the same append, a patch without failure keeps it, and failure: null clears it",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        yield* store.append({
          runId: "run-1",
          token: 1,
          events: [stepCompleted(2_000, "a")],
          patch: { status: "failed", failure },
          now: 2_000
        })
        const failed = yield* getRun("run-1")
        expect(failed).toMatchObject({ status: "failed", lastSeq: 3, updatedAt: 2_000, ...failure })

        yield* store.append({ runId: "run-1", token: 1, events: [], patch: { status: "needs_attention" }, now: 2_500 })
        expect(yield* getRun("run-1")).toMatchObject({ status: "needs_attention", ...failure })

        yield* store.append({
          runId: "run-1",
          token: 1,
          events: [stepCompleted(3_000, "b")],
          patch: { status: "running", failure: null },
          now: 3_000
        })
        const resumed = yield* getRun("run-1")
        expect(resumed.status).toBe("running")
        expect(resumed.failureClass).toBeUndefined()
        expect(resumed.failureFingerprint).toBeUndefined()
        expect(resumed.failureReason).toBeUndefined()
        expect(resumed.lastSeq).toBe(4)

        yield* store.append({ runId: "run-1", token: 1, events: [], patch: { failure }, now: 3_500 })
        expect(yield* getRun("run-1")).toMatchObject({ status: "running", ...failure })
      })
    )

    test(
      "acquire compares and sets the token, bumps it, and appends its events with the new token",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const run = yield* store.acquire({
          runId: "run-1",
          expectedToken: 1,
          owner: "worker-2",
          now: 50_000,
          leaseExpiresAt: 80_000,
          requireExpired: false,
          events: (token) => [
            Event.encode(new Event.RunResumed({ at: 50_000, reason: "retry" })),
            leaseTaken(50_000, "worker-2", token, 80_000)
          ]
        })
        expect(run).toMatchObject({
          runId: "run-1",
          owner: "worker-2",
          leaseToken: 2,
          leaseExpiresAt: 80_000,
          lastSeq: 4,
          updatedAt: 50_000,
          createdAt: 1_000,
          status: "running"
        })
        expect(yield* getRun("run-1")).toEqual(run)
        const log = yield* store.readEvents("run-1")
        expect(log.map((e) => [e.seq, e.type])).toEqual([[1, "RunStarted"], [2, "LeaseTaken"], [3, "RunResumed"], [
          4,
          "LeaseTaken"
        ]])
        const taken = yield* Event.decode(log[3]!)
        expect(taken).toMatchObject({ _tag: "LeaseTaken", owner: "worker-2", token: 2 })

        // The old owner is fenced off; the new one appends.
        expect((yield* Effect.flip(store.append({ runId: "run-1", token: 1, events: [], now: 50_001 })))._tag).toBe(
          "LeaseLost"
        )
        expect(yield* store.append({ runId: "run-1", token: 2, events: [stepCompleted(50_002, "a")], now: 50_002 }))
          .toBe(5)

        // A second acquire with the token seen before the first one fails and writes nothing.
        const lost = yield* Effect.flip(
          store.acquire({
            runId: "run-1",
            expectedToken: 1,
            owner: "worker-3",
            now: 50_003,
            leaseExpiresAt: 90_000,
            requireExpired: false,
            events: (token) => [leaseTaken(50_003, "worker-3", token, 90_000)]
          })
        )
        expect(lost._tag).toBe("LeaseLost")
        expect(yield* getRun("run-1")).toMatchObject({ owner: "worker-2", leaseToken: 2, lastSeq: 5 })

        const missing = yield* Effect.flip(
          store.acquire({
            runId: "nope",
            expectedToken: 1,
            owner: "worker-3",
            now: 50_003,
            leaseExpiresAt: 90_000,
            requireExpired: false,
            events: () => []
          })
        )
        expect(missing._tag).toBe("LeaseLost")
      })
    )

    test(
      "acquire with requireExpired refuses a live lease of a running run and takes an expired one",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        const takeover = (now: number) =>
          store.acquire({
            runId: "run-1",
            expectedToken: 1,
            owner: "worker-2",
            now,
            leaseExpiresAt: now + 30_000,
            requireExpired: true,
            events: (token) => [leaseTaken(now, "worker-2", token, now + 30_000)]
          })
        const refused = yield* Effect.flip(takeover(30_999))
        expect(refused._tag).toBe("LeaseLost")
        expect(yield* getRun("run-1")).toMatchObject({ owner: "worker-1", leaseToken: 1, lastSeq: 2 })
        expect(yield* store.readEvents("run-1")).toHaveLength(2)

        // A lease expires at its expiry time.
        const taken = yield* takeover(31_000)
        expect(taken).toMatchObject({ owner: "worker-2", leaseToken: 2, leaseExpiresAt: 61_000, lastSeq: 3 })
      })
    )

    test(
      "acquire with requireExpired takes a run that is no longer running even under a live lease, and applies its patch",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        yield* store.append({ runId: "run-1", token: 1, events: [], patch: { status: "failed", failure }, now: 2_000 })
        const run = yield* store.acquire({
          runId: "run-1",
          expectedToken: 1,
          owner: "worker-2",
          now: 3_000,
          leaseExpiresAt: 33_000,
          requireExpired: true,
          events: (token) => [leaseTaken(3_000, "worker-2", token, 33_000)],
          patch: { status: "running", failure: null }
        })
        expect(run).toMatchObject({ status: "running", leaseToken: 2, lastSeq: 3 })
        expect(run.failureClass).toBeUndefined()
        expect(run.failureReason).toBeUndefined()
        expect(yield* getRun("run-1")).toEqual(run)
      })
    )

    test(
      "renew extends the owner's lease; a stale token fails with LeaseLost and changes nothing",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        yield* store.renew({ runId: "run-1", token: 1, leaseExpiresAt: 45_000, now: 15_000 })
        expect(yield* getRun("run-1")).toMatchObject({ leaseExpiresAt: 45_000, leaseToken: 1, lastSeq: 2 })

        yield* store.acquire({
          runId: "run-1",
          expectedToken: 1,
          owner: "worker-2",
          now: 16_000,
          leaseExpiresAt: 46_000,
          requireExpired: false,
          events: () => []
        })
        const error = yield* Effect.flip(store.renew({ runId: "run-1", token: 1, leaseExpiresAt: 99_000, now: 17_000 }))
        expect(error).toMatchObject({ _tag: "LeaseLost", runId: "run-1", token: 1 })
        expect((yield* getRun("run-1")).leaseExpiresAt).toBe(46_000)
        expect((yield* Effect.flip(store.renew({ runId: "nope", token: 1, leaseExpiresAt: 1, now: 1 })))._tag).toBe(
          "LeaseLost"
        )
      })
    )

    test(
      "listRuns filters by status, pipeline, key, update time and limit, newest created first",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-a", "k1", { now: 1_000 })
        yield* created("run-b", "k2", { now: 2_000 })
        yield* created("run-c", "k1", { now: 3_000, pipeline: "invoices" })
        yield* created("run-e", "k3", { now: 3_000 })
        yield* created("run-d", "k4", { now: 3_000, version: "2" })
        yield* store.append({ runId: "run-a", token: 1, events: [], patch: { status: "completed" }, now: 10_000 })
        yield* store.append({ runId: "run-b", token: 1, events: [], patch: { status: "failed", failure }, now: 4_000 })

        const ids = (filter: EventStore.RunFilter) =>
          Effect.map(store.listRuns(filter), (runs) => runs.map((run) => run.runId))
        // Newest created first; runs created in the same millisecond by id, descending.
        expect(yield* ids({})).toEqual(["run-e", "run-d", "run-c", "run-b", "run-a"])
        expect(yield* ids({ status: "running" })).toEqual(["run-e", "run-d", "run-c"])
        expect(yield* ids({ status: "completed" })).toEqual(["run-a"])
        expect(yield* ids({ status: "cancelled" })).toEqual([])
        expect(yield* ids({ pipeline: "invoices" })).toEqual(["run-c"])
        expect(yield* ids({ pipeline: pipeline, key: "k1" })).toEqual(["run-a"])
        expect(yield* ids({ version: "2" })).toEqual(["run-d"])
        expect(yield* ids({ version: "1", status: "running" })).toEqual(["run-e", "run-c"])
        expect(yield* ids({ key: "k1" })).toEqual(["run-c", "run-a"])
        expect(yield* ids({ since: 4_000 })).toEqual(["run-b", "run-a"])
        expect(yield* ids({ since: 4_001 })).toEqual(["run-a"])
        expect(yield* ids({ limit: 2 })).toEqual(["run-e", "run-d"])
        expect(yield* ids({ status: "running", pipeline, limit: 1 })).toEqual(["run-e"])
        expect(yield* ids({ limit: 0 })).toEqual([])

        const failedRuns = yield* store.listRuns({ status: "failed" })
        expect(failedRuns).toEqual([yield* getRun("run-b")])
        expect(failedRuns[0]).toMatchObject(failure)
      })
    )

    test(
      "findByPrefix finds runs whose id starts with the prefix, literally and case-sensitively, at most limit",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const ids = ["run-abc1", "run-abc2", "run-abd", "RUN-abc3", "x*y", "a_b", "axb", "50%", "505"]
        yield* Effect.forEach(ids, (id, i) => created(id, `key-${i}`, { now: 1_000 + i }), { discard: true })
        const found = (prefix: string, limit = 10) =>
          Effect.map(store.findByPrefix(prefix, limit), (runs) => runs.map((run) => run.runId).sort())
        expect(yield* found("run-abc")).toEqual(["run-abc1", "run-abc2"])
        expect(yield* found("run-ab")).toEqual(["run-abc1", "run-abc2", "run-abd"])
        expect(yield* found("RUN")).toEqual(["RUN-abc3"])
        expect(yield* found("run-abc", 1)).toHaveLength(1)
        expect(yield* found("x*")).toEqual(["x*y"])
        expect(yield* found("x?")).toEqual([])
        expect(yield* found("a_")).toEqual(["a_b"])
        expect(yield* found("50%")).toEqual(["50%"])
        expect(yield* found("run-abd")).toEqual(["run-abd"])
        expect(yield* found("zzz")).toEqual([])
        expect((yield* store.findByPrefix("run-abc1", 5))[0]).toEqual(yield* getRun("run-abc1"))
      })
    )

    test(
      "readEvents returns a run's events from a seq, in order",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        yield* created("run-2", "key-2")
        yield* store.append({
          runId: "run-1",
          token: 1,
          events: [stepCompleted(2_000, "a"), stepCompleted(2_001, "b")],
          now: 2_001
        })
        yield* store.append({ runId: "run-2", token: 1, events: [stepCompleted(2_002, "z")], now: 2_002 })
        expect((yield* store.readEvents("run-1", 3)).map((e) => [e.runId, e.seq])).toEqual([["run-1", 3], ["run-1", 4]])
        expect((yield* store.readEvents("run-1", 4)).map((e) => e.seq)).toEqual([4])
        expect(yield* store.readEvents("run-1", 5)).toEqual([])
        expect((yield* store.readEvents("run-1")).map((e) => e.seq)).toEqual([1, 2, 3, 4])
        expect((yield* store.readEvents("run-2", 1)).map((e) => e.seq)).toEqual([1, 2, 3])
        expect(yield* store.readEvents("nope")).toEqual([])
        const decoded = yield* Event.decode((yield* store.readEvents("run-1", 3))[0]!)
        expect(decoded).toMatchObject({ _tag: "StepCompleted", stepId: "a", output: { unicode: "é ✓ 😀" } })
      })
    )

    test(
      "a completion's step columns are kept by claim, acquire and append and read back with it; other events have none",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const columns = (stepId: string, at: number) => ({
          stepId,
          name: stepId,
          inputHash: `input-${stepId}`,
          attempt: 1,
          startedAt: at - 1
        })
        const paid = Event.encode(
          new Event.StepCompleted({
            ...columns("paid", 4_000),
            at: 4_000,
            output: null,
            usage: [new Usage.Usage({ model: "claude-x", inputTokens: 10, outputTokens: 5 })]
          })
        )
        expect(paid.step).toBeUndefined()
        yield* created("run-1", "key-1", {
          events: [runStarted(1_000, "key-1"), leaseTaken(1_000, "worker-1", 1, 31_000), stepCompleted(1_001, "c")]
        })
        yield* store.acquire({
          runId: "run-1",
          expectedToken: 1,
          owner: "worker-2",
          now: 2_000,
          leaseExpiresAt: 32_000,
          requireExpired: false,
          events: (token) => [leaseTaken(2_000, "worker-2", token, 32_000), stepCompleted(2_001, "a")]
        })
        yield* store.append({ runId: "run-1", token: 2, events: [stepCompleted(3_000, "b"), paid], now: 4_000 })
        const log = yield* store.readEvents("run-1")
        expect(log.map((e) => [e.type, e.step])).toEqual([
          ["RunStarted", undefined],
          ["LeaseTaken", undefined],
          ["StepCompleted", columns("c", 1_001)],
          ["LeaseTaken", undefined],
          ["StepCompleted", columns("a", 2_001)],
          ["StepCompleted", columns("b", 3_000)],
          ["StepCompleted", undefined]
        ])
        expect((yield* store.readEvents("run-1", 6))[0]!.step).toEqual(columns("b", 3_000))
      })
    )

    it.effect.prop(
      "a run's events fold from the store, completions from their step columns, to the state they fold to decoded",
      { histories: FastCheck.array(stepHistory, { minLength: 1, maxLength: 5 }), resumed: FastCheck.boolean() },
      ({ histories, resumed }) =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          yield* created("run-1", "key-1")
          const events = historyEvents(histories)
          yield* store.append({
            runId: "run-1",
            token: 1,
            events: [
              ...(resumed ? [Event.encode(new Event.RunResumed({ at: 1_500, reason: "lease expired" }))] : []),
              ...events.map(Event.encode)
            ],
            now: 4_000
          })
          const stored = yield* store.readEvents("run-1")
          const folded = yield* Journal.foldStored(stored)
          const decoded = Journal.fold(yield* Event.decodeAll(stored))
          expect(withOutputs(folded)).toEqual(withOutputs(decoded))
          for (const entry of folded.steps.values()) {
            if (entry.completed !== undefined) expect(Either.isRight(Journal.readOutput(entry.completed.output))).toBe(true)
          }
          // Every completion without usage was folded from its columns, not decoded, unless its name has a lone
          // surrogate or a NUL (JSON keeps them, a text column does not).
          const fromColumns = [...folded.steps.values()].filter((e) => e.completed?.output._tag === "Stored")
          expect(fromColumns.length).toBe(
            histories.filter((h) => h.completes && !h.paid && !/\p{Cs}|\u0000/u.test(h.name)).length
          )
          // As a resume reads it: those completions without their bodies, which come in one read, by seq.
          const rows = yield* store.readFold("run-1")
          const bodies = yield* store.readBodies("run-1")
          expect(rows.filter((row) => !("data" in row)).map((row) => row.seq).sort()).toEqual([...bodies.keys()].sort())
          const fromRows = yield* Journal.foldStored(rows)
          expect(Journal.needsBodies(fromRows)).toBe(fromColumns.length > 0)
          expect(withOutputs(fromRows, bodies)).toEqual(withOutputs(decoded))
        }).pipe(Effect.provide(makeLayer())),
      { fastCheck: { numRuns: 25 } }
    )

    test(
      "16 concurrent runs appending at once all land, each with consecutive seqs",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const runs = Array.from({ length: 16 }, (_, i) => `run-${String(i).padStart(2, "0")}`)
        yield* Effect.forEach(runs, (runId) => created(runId, `key-${runId}`), { concurrency: "unbounded" })
        const steps = 20
        const returned = yield* Effect.forEach(
          runs,
          (runId) =>
            Effect.forEach(
              Array.from({ length: steps }, (_, i) => i),
              (i) =>
                store.append({
                  runId,
                  token: 1,
                  expectedSeq: 2 + i,
                  events: [stepCompleted(2_000 + i, `${runId}/step-${i}`)],
                  now: 2_000 + i
                }),
              { concurrency: 1 }
            ),
          { concurrency: "unbounded" }
        )
        for (const seqs of returned) expect(seqs).toEqual(Array.from({ length: steps }, (_, i) => 3 + i))
        for (const runId of runs) {
          const log = yield* store.readEvents(runId)
          expect(log.map((e) => e.seq)).toEqual(Array.from({ length: steps + 2 }, (_, i) => i + 1))
          expect(log.slice(2).map((e) => e.data)).toEqual(
            Array.from({ length: steps }, (_, i) => stepCompleted(2_000 + i, `${runId}/step-${i}`).data)
          )
          expect((yield* getRun(runId)).lastSeq).toBe(steps + 2)
        }
      })
    )

    test(
      "concurrent writes fail or succeed each on its own: a stale append does not fail the appends beside it",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* created("run-1", "key-1")
        yield* created("run-2", "key-2")
        const results = yield* Effect.all(
          [
            Effect.either(store.append({ runId: "run-1", token: 1, events: [stepCompleted(2_000, "a")], now: 2_000 })),
            Effect.either(store.append({ runId: "run-2", token: 9, events: [stepCompleted(2_000, "b")], now: 2_000 })),
            Effect.either(
              store.append({ runId: "run-2", token: 1, expectedSeq: 7, events: [stepCompleted(2_000, "c")], now: 2_000 })
            ),
            Effect.either(store.claim(claimRequest("run-3", "key-1"))),
            Effect.either(store.renew({ runId: "run-2", token: 1, leaseExpiresAt: 70_000, now: 2_000 })),
            Effect.either(store.append({ runId: "run-2", token: 1, events: [stepCompleted(2_001, "d")], now: 2_001 }))
          ],
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => r._tag === "Right" ? "ok" : r.left._tag)).toEqual([
          "ok",
          "LeaseLost",
          "SeqConflict",
          "ok",
          "ok",
          "ok"
        ])
        expect((yield* store.readEvents("run-1")).map((e) => e.seq)).toEqual([1, 2, 3])
        expect((yield* store.readEvents("run-2")).map((e) => e.type)).toEqual(["RunStarted", "LeaseTaken", "StepCompleted"])
        expect(yield* getRun("run-2")).toMatchObject({ lastSeq: 3, leaseExpiresAt: 70_000 })
        expect(yield* store.getRun("run-3")).toEqual(Option.none())
      })
    )

    test(
      "writes made alone (nothing to batch with) commit like any other, before and beside queued ones",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const claimed = yield* store.claim({ ...claimRequest("run-1", "key-1"), alone: true })
        expect(claimed._tag).toBe("Created")
        expect(yield* store.append({ runId: "run-1", token: 1, events: [stepCompleted(2_000, "a")], now: 2_000, alone: true }))
          .toBe(3)
        const stale = yield* Effect.flip(
          store.append({ runId: "run-1", token: 2, events: [stepCompleted(2_000, "x")], now: 2_000, alone: true })
        )
        expect(stale._tag).toBe("LeaseLost")
        // Started together, some alone and some not: every one lands, in the order they were submitted.
        const seqs = yield* Effect.all(
          ["b", "c", "d", "e"].map((id, i) =>
            store.append({ runId: "run-1", token: 1, events: [stepCompleted(2_001 + i, id)], now: 2_001 + i, alone: i % 2 === 0 })
          ),
          { concurrency: "unbounded" }
        )
        expect(seqs).toEqual([4, 5, 6, 7])
        expect((yield* store.readEvents("run-1")).map((e) => JSON.parse(e.data).stepId ?? e.type)).toEqual([
          "RunStarted",
          "LeaseTaken",
          "a",
          "b",
          "c",
          "d",
          "e"
        ])
      })
    )

    test(
      "a setting reads back what was last put, and an unknown setting is None",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        expect(yield* store.getSetting("breaker/reports")).toEqual(Option.none())
        yield* store.putSetting("breaker/reports", "1000")
        yield* store.putSetting("breaker/invoices", "7")
        expect(yield* store.getSetting("breaker/reports")).toEqual(Option.some("1000"))
        yield* store.putSetting("breaker/reports", "2000")
        expect(yield* store.getSetting("breaker/reports")).toEqual(Option.some("2000"))
        expect(yield* store.getSetting("breaker/invoices")).toEqual(Option.some("7"))
      })
    )

    test(
      "a counter counts every increment and keeps the last actors, newest last",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const increment = (key: string, actor: string) => store.incrementCounter({ key, actor, keepLast: 2, now: 1_000 })
        expect(yield* increment("thread-1", "bot-a")).toEqual({ count: 1, actors: ["bot-a"] })
        expect(yield* increment("thread-1", "bot-b")).toEqual({ count: 2, actors: ["bot-a", "bot-b"] })
        expect(yield* increment("thread-1", "bot-a")).toEqual({ count: 3, actors: ["bot-b", "bot-a"] })
        expect(yield* increment("thread-2", "bot-c")).toEqual({ count: 1, actors: ["bot-c"] })
        const counts = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => increment("thread-3", `bot-${i}`)),
          { concurrency: "unbounded" }
        )
        expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
        expect((yield* increment("thread-3", "bot-last")).count).toBe(11)
      })
    )

    test(
      "getRun and findByKey of an unknown run are None",
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        expect(yield* store.getRun("nope")).toEqual(Option.none())
        expect(yield* store.findByKey(pipeline, "nope")).toEqual(Option.none())
        expect(yield* store.listRuns({})).toEqual([])
        expect(yield* store.findByPrefix("", 10)).toEqual([])
      })
    )

    // `awaitRunChange`: a starter waiting on a run another worker holds. The TestClock never moves in these
    // tests unless they say so: a wait that returns was woken, it did not time out.
    describe("awaitRunChange", () => {
      const held = (runId: string) => created(runId, `key-${runId}`, { leaseExpiresAt: 10_000_000 })
      /** The store, and a fiber waiting (60 s at most) on a fresh run held by another worker. */
      const waitingOnHeld = Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* held("run-1")
        return { store, waiter: yield* forkParked(store.awaitRunChange("run-1", "60 seconds")) }
      })

      test(
        "a waiter on a held run is woken by its completion, long before atMost",
        Effect.gen(function*() {
          const { store, waiter } = yield* waitingOnHeld
          expect(waiter.unsafePoll()).toBeNull()
          yield* store.append({ runId: "run-1", token: 1, now: 2_000, events: [stepCompleted(2_000, "a")], patch: { status: "completed" } })
          yield* Fiber.join(waiter)
        })
      )

      test(
        "a waiter is woken by the run's failure, and by its lease given up (renewed to now)",
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          yield* held("run-1")
          yield* held("run-2")
          const first = yield* forkParked(store.awaitRunChange("run-1", "60 seconds"))
          const second = yield* forkParked(store.awaitRunChange("run-2", "60 seconds"))
          yield* store.append({ runId: "run-1", token: 1, now: 2_000, events: [], patch: { status: "failed", failure } })
          yield* Fiber.join(first)
          expect(second.unsafePoll()).toBeNull()
          yield* store.renew({ runId: "run-2", token: 1, now: 0, leaseExpiresAt: 0 })
          yield* Fiber.join(second)
        })
      )

      test(
        "a wait on a run not held under a live lease returns at once: finished, lease run out, or no such run",
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          yield* created("run-1", "key-1")
          yield* store.append({ runId: "run-1", token: 1, now: 2_000, events: [], patch: { status: "completed" } })
          yield* store.awaitRunChange("run-1", "60 seconds")
          yield* created("run-2", "key-2", { leaseExpiresAt: 5_000 })
          yield* TestClock.setTime(5_000)
          yield* store.awaitRunChange("run-2", "60 seconds")
          yield* store.awaitRunChange("run-none", "60 seconds")
        })
      )

      test(
        "with nothing changed, a waiter returns after atMost",
        Effect.gen(function*() {
          const { store, waiter } = yield* waitingOnHeld
          // A step's append changes no status: it may wake the waiter or not, the wait ends at atMost at the latest.
          yield* store.append({ runId: "run-1", token: 1, now: 2_000, events: [stepCompleted(2_000, "a")] })
          yield* TestClock.adjust("60 seconds")
          yield* Fiber.join(waiter)
          expect(Option.getOrThrow(yield* store.getRun("run-1")).status).toBe("running")
        })
      )
    })
  })
}
