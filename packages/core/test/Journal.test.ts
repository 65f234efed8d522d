import { describe, expect, it } from "@effect/vitest"
import { Event, Failure, Journal } from "@ledgerflow/core"
import { Arbitrary, Effect, Either, Schema } from "effect"
import { FastCheck as fc } from "effect"

/** One step's own history: some failed attempts, then maybe a completion. */
const stepHistory = (stepIndex: number, failures: number, completes: boolean): Array<Event.Event> => {
  const stepId = `s${stepIndex}#0`
  const events: Array<Event.Event> = []
  for (let attempt = 1; attempt <= failures; attempt++) {
    events.push(
      new Event.StepAttemptFailed({
        at: attempt * 10,
        stepId,
        name: `s${stepIndex}`,
        inputHash: "h",
        attempt,
        startedAt: attempt * 10 - 5,
        failure: Failure.transient(`attempt ${attempt} of ${stepId}`),
        retryDelayMs: 100
      })
    )
  }
  if (completes) {
    events.push(
      new Event.StepCompleted({
        at: 1000,
        stepId,
        name: `s${stepIndex}`,
        inputHash: "h",
        attempt: failures + 1,
        startedAt: 990,
        output: { step: stepIndex }
      })
    )
  }
  return events
}

/** Merge per-step histories in the order `picks` chooses, keeping each step's own order. */
const interleave = (histories: Array<Array<Event.Event>>, picks: ReadonlyArray<number>): Array<Event.Event> => {
  const queues = histories.map((h) => [...h])
  const out: Array<Event.Event> = []
  let p = 0
  while (queues.some((q) => q.length > 0)) {
    const live = queues.filter((q) => q.length > 0)
    const q = live[(picks[p++ % Math.max(1, picks.length)] ?? 0) % live.length]!
    out.push(q.shift()!)
  }
  return out
}

const started = new Event.RunStarted({ at: 0, pipeline: "p", version: "1", key: "k", input: null, inputHash: "h" })

/** Events as a store hands them back: envelope, body and (for most completions) step columns. */
const store = (events: ReadonlyArray<Event.Event>): Array<Event.StoredEvent> =>
  events.map((event, i) => ({ runId: "run_1", seq: i + 1, ...Event.encode(event) }))

/** A fold's state with each completion's output read (from the log when it was folded from its columns). */
const withOutputs = (state: Journal.RunState) => ({
  ...state,
  steps: [...state.steps.entries()].map(([stepId, entry]) => [stepId, {
    ...entry,
    completed: entry.completed && { ...entry.completed, output: Journal.readOutput(entry.completed.output) }
  }])
})

/** Any completion (any field values, with or without usage), of one of two steps so that some repeat. */
const anyCompletion = fc.tuple(Arbitrary.make(Event.StepCompleted), fc.constantFrom("a#0", "b#0")).map(
  ([event, stepId]) => new Event.StepCompleted({ ...event, stepId })
)

describe("Journal.fold", () => {
  it.prop(
    "any interleaving of the steps' events folds to the same state per step",
    {
      shape: fc.array(fc.record({ failures: fc.integer({ min: 0, max: 4 }), completes: fc.boolean() }), {
        minLength: 1,
        maxLength: 6
      }),
      picks: fc.array(fc.nat(), { minLength: 1, maxLength: 40 })
    },
    ({ picks, shape }) => {
      const histories = shape.map((s, i) => stepHistory(i, s.failures, s.completes))
      const sequential = Journal.fold([started, ...histories.flat()])
      const interleaved = Journal.fold([started, ...interleave(histories, picks)])
      expect([...interleaved.steps.entries()].sort()).toEqual([...sequential.steps.entries()].sort())
      expect([...interleaved.completionOrder].sort()).toEqual([...sequential.completionOrder].sort())
      shape.forEach((s, i) => {
        const entry = interleaved.steps.get(`s${i}#0`)
        expect(entry?.failedAttempts ?? 0).toBe(s.failures)
        expect(entry?.completed !== undefined).toBe(s.completes && true)
      })
    }
  )

  it.prop(
    "folding stored events, completions from their step columns, is folding them decoded, on any events",
    {
      events: fc.array(
        fc.oneof({ arbitrary: anyCompletion, weight: 3 }, { arbitrary: Arbitrary.make(Event.Event), weight: 1 }),
        { maxLength: 10 }
      )
    },
    ({ events }) => {
      const stored = store([started, ...events])
      const viaColumns = Effect.runSync(Effect.either(Journal.foldStored(stored)))
      const decoded = Effect.runSync(Effect.either(Effect.map(Event.decodeAll(stored), Journal.fold)))
      expect(Either.map(viaColumns, withOutputs)).toEqual(Either.map(decoded, withOutputs))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("a completion folded from its columns is read when served: a damaged body is an UnknownEvent naming it", () => {
    const completed = new Event.StepCompleted({
      at: 10,
      stepId: "fetch#0",
      name: "fetch",
      inputHash: "h1",
      attempt: 1,
      startedAt: 9,
      output: { rows: 3 }
    })
    const [head, body] = store([started, completed])
    const output = (stored: Event.StoredEvent) => {
      const state = Effect.runSync(Journal.foldStored([head!, stored]))
      return Journal.readOutput(state.steps.get("fetch#0")!.completed!.output)
    }
    expect(output(body!)).toEqual(Either.right({ rows: 3 }))
    // The fold does not read the body: a damaged one folds, and is reported when the step is served.
    const notJson = output({ ...body!, data: body!.data.slice(0, 20) })
    expect(Either.isLeft(notJson) && notJson.left).toMatchObject({
      _tag: "UnknownEvent",
      seq: 2,
      message: "event #2 (StepCompleted) of run run_1 is not valid JSON"
    })
    const otherStep = output({ ...body!, data: body!.data.replace("fetch#0", "fetch#1") })
    expect(Either.isLeft(otherStep) && otherStep.left.message).toContain("its body is of step fetch#1")
    // Its type and version are still checked when it is folded.
    const newer = Effect.runSync(Effect.flip(Journal.foldStored([head!, { ...body!, v: 9 }])))
    expect(newer.message).toContain("format version 9")
  })

  it("a resume after a failure opens a new retry budget; a takeover after a crash keeps it", () => {
    const failed = stepHistory(0, 3, false)
    const afterFailure = Journal.fold([
      started,
      ...failed,
      new Event.RunFailed({ at: 50, failure: Failure.transient("x"), fingerprint: "f" }),
      new Event.RunResumed({ at: 60, reason: "resumed" })
    ])
    expect(afterFailure.steps.get("s0#0")).toMatchObject({ failedAttempts: 3, budget: { attempts: 0 } })
    const afterCrash = Journal.fold([started, ...failed, new Event.RunResumed({ at: 60, reason: "lease expired" })])
    expect(afterCrash.steps.get("s0#0")).toMatchObject({ failedAttempts: 3, budget: { attempts: 3, startedAt: 5 } })
    expect(afterCrash.steps.get("s0#0")?.retryAt).toBe(130)
  })
})

describe("Event", () => {
  it.effect("an event type this reader does not know is an UnknownEvent naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Event.decode({ runId: "run_1", seq: 7, type: "StepTeleported", v: 1, at: 0, data: "{}" })
      )
      expect(error._tag).toBe("UnknownEvent")
      expect(error.message).toContain("StepTeleported")
      expect(error.message).toContain("upgrade ledgerflow")
    }))

  it.effect("a newer format version is refused with the versions this reader knows", () =>
    Effect.gen(function*() {
      const encoded = Event.encode(started)
      const error = yield* Effect.flip(Event.decode({ runId: "run_1", seq: 1, ...encoded, v: 9 }))
      expect(error.message).toContain("format version 9")
    }))

  it.prop(
    "the fast decoder of StepCompleted agrees with the Schema decoder on any event",
    { event: Arbitrary.make(Event.StepCompleted) },
    ({ event }) => {
      const stored = { runId: "r", seq: 1, ...Event.encode(event) }
      const viaSchema = Schema.decodeUnknownEither(Event.StepCompleted)(JSON.parse(stored.data))
      const decoded = Event.decodeEither(stored)
      expect(Either.isRight(decoded)).toBe(Either.isRight(viaSchema))
      if (Either.isRight(decoded) && Either.isRight(viaSchema)) expect(decoded.right).toEqual(viaSchema.right)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it.prop(
    "an event written without the Schema interpreter (no transformed field set) is what the Schema encoder writes",
    { event: Arbitrary.make(Event.Event) },
    ({ event }) => {
      const viaSchema = Schema.encodeSync(Event.Event)(event)
      expect(JSON.parse(Event.encode(event).data)).toEqual(JSON.parse(JSON.stringify(viaSchema)))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "Event.make builds what the class constructor builds: same class, fields, order and encoding",
    { event: Arbitrary.make(Event.Event) },
    ({ event }) => {
      const { _tag, ...props } = event as unknown as Record<string, unknown>
      const klass = Event.Event.members.find((m) => m.identifier === _tag)!
      const made = Event.make(klass, props as never)
      const constructed = new klass(props as never, true)
      expect(made).toBeInstanceOf(klass)
      expect(made).toEqual(constructed)
      expect(Object.keys(made)).toEqual(Object.keys(constructed))
      expect(Event.encode(made)).toEqual(Event.encode(constructed))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.effect("events round-trip through their encoding, failures included", () =>
    Effect.gen(function*() {
      const failure = Failure.transient("HTTP 429", { retryAfter: "3 seconds", rule: "http-status" })
      const event = new Event.RunFailed({ at: 5, failure, fingerprint: "f", stepId: "a#0" })
      const back = yield* Event.decode({ runId: "r", seq: 1, ...Event.encode(event) })
      expect(back).toEqual(event)
    }))
})
