/**
 * The journal: a run's event log folded into what the engine needs to resume it — which steps completed
 * (with their encoded outputs), how many attempts each has spent, and the run's outcome. A pure fold.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import * as Event from "./Event.js"
import type { RunStatus } from "./EventStore.js"
import type * as Failure from "./Failure.js"
import type { Usage } from "./Usage.js"

export interface StepEntry {
  readonly stepId: string
  readonly name: string
  /** The input hash of the step's latest event. */
  readonly inputHash: string
  /** Failed attempts so far, across every process that ran the step: attempts are numbered on from it. */
  readonly failedAttempts: number
  /** When the step's first attempt started. */
  readonly firstStartedAt: number
  /**
   * The retry budget in force: failed attempts and the start of the first one since the run was last
   * (re)started after a failure. A crash keeps the budget; resuming a failed run opens a new one.
   * Replies that drifted from the step's output Schema (rule `schema-drift`) count in `drifts`, not in
   * `attempts`: they have their own cap (`Step.driftCap`), apart from the retry policy's.
   */
  readonly budget: { readonly attempts: number; readonly startedAt: number | undefined; readonly drifts: number }
  /** When the last failed attempt asked to be retried: a resumed step waits until then. */
  readonly retryAt?: number
  /** The last failure and whether it ended the step (no retry scheduled). */
  readonly lastFailure?: { readonly failure: Failure.Failure; readonly final: boolean; readonly at: number }
  readonly completed?: {
    /** The step's output as its Schema encoded it; read it with `readOutput` (it may still be in the log). */
    readonly output: Output
    readonly attempt: number
    readonly at: number
    readonly usage: ReadonlyArray<Usage>
  }
  /** The step made its start durable before its body ran: it is irreversible. */
  readonly irreversible?: boolean
  /** A durable start (irreversible steps) not yet followed by a completion or failure. */
  readonly inDoubt?: { readonly attempt: number; readonly idempotencyKey: string }
  /** The compensation's progress; once `completed`, the step's effect is undone and it runs again on resume. */
  readonly compensation?: "started" | "completed" | "failed"
  /** Every usage recorded for the step: failed attempts and the completion. */
  readonly usage: ReadonlyArray<Usage>
}

export interface RunState {
  readonly status: RunStatus | "new"
  readonly started?: Event.RunStarted
  readonly steps: ReadonlyMap<string, StepEntry>
  /** Step ids in the order they completed: compensations run in the reverse. */
  readonly completionOrder: ReadonlyArray<string>
  readonly output?: unknown
  readonly failure?: { readonly failure: Failure.Failure; readonly fingerprint: string; readonly stepId?: string }
  /** Step ids a resumed execution served from the log (what resumes saved). */
  readonly served: ReadonlyArray<string>
  /**
   * The first irreversible step that completed: the run is past its pivot and can only go forward (no
   * rollback undoes what came before it).
   */
  readonly pivot?: string
  readonly resumes: number
  readonly events: number
}

/**
 * A completion's encoded output: at hand when the fold was given decoded events; still in the stored
 * event's body when it folded the store's rows (`foldStored`), parsed only when the step is served.
 */
export type Output =
  | { readonly _tag: "Decoded"; readonly value: unknown }
  | { readonly _tag: "Stored"; readonly event: Event.FoldRow }

/**
 * A completion's encoded output. A stored body that is not a JSON object, or names another step than its
 * columns, is damaged: an `UnknownEvent` naming the event, worded as `Event.decode` words it. A completion
 * folded without its body (`EventStore.readFold`) is read from `bodies` (`EventStore.readBodies`).
 */
export const readOutput = (
  output: Output,
  bodies?: ReadonlyMap<number, string>
): Either.Either<unknown, Event.UnknownEvent> => {
  if (output._tag === "Decoded") return Either.right(output.value)
  const stored = output.event
  const damaged = (why: string) =>
    Either.left(
      new Event.UnknownEvent({
        runId: stored.runId,
        seq: stored.seq,
        type: stored.type,
        v: stored.v,
        message: `event #${stored.seq} (${stored.type}) of run ${stored.runId} ${why}`
      })
    )
  const body = "data" in stored ? stored.data : bodies?.get(stored.seq)
  if (body === undefined) return damaged("has no body in the log")
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return damaged("is not valid JSON")
  }
  if (!Predicate.isRecord(json)) return damaged("does not match its schema: it is not an object")
  if (json["stepId"] !== stored.step?.stepId || json["inputHash"] !== stored.step?.inputHash) {
    return damaged(
      `is damaged: its body is of step ${String(json["stepId"])} with input hash ${
        String(json["inputHash"])
      }, its columns of step ${stored.step?.stepId} with ${stored.step?.inputHash}`
    )
  }
  // A step whose output encodes to `undefined` (a `Schema.Void` output) is written without the key.
  return Either.right(json["output"])
}

/**
 * Fold a run's events, in seq order, into its state. Events of different steps commute; per step, order
 * matters. The fold mutates only values it created, so it is linear in the number of events.
 */
export const fold = (events: Iterable<Event.Event>): RunState => {
  const folder = makeFolder()
  for (const event of events) folder.add(event)
  return folder.state()
}

/**
 * Fold a run's stored events, as `fold` folds them decoded, without parsing the body of a completion that
 * came with its step columns: its output stays in the log until the step is served (`readOutput`). Every
 * other event is decoded; an unknown type or version, or a damaged body, is the `UnknownEvent` of
 * `Event.decode`.
 */
export const foldStored = (stored: ReadonlyArray<Event.FoldRow>): Effect.Effect<RunState, Event.UnknownEvent> =>
  Effect.suspend(() => {
    const folder = makeFolder()
    for (const s of stored) {
      if (s.step !== undefined && s.type === "StepCompleted" && s.v >= 1 && s.v <= Event.FORMAT_VERSION) {
        folder.completion(s.step, s.at, { _tag: "Stored", event: s }, noUsage)
        continue
      }
      if (!("data" in s)) return Effect.fail(withoutBody(s))
      const decoded = Event.decodeEither(s)
      if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
      folder.add(decoded.right)
    }
    return Effect.succeed(folder.state())
  })

const noUsage: ReadonlyArray<Usage> = []

/** A row handed without its body is a completion this reader folds; one of another type or version is not. */
const withoutBody = (s: Event.StoredCompletion) =>
  new Event.UnknownEvent({
    runId: s.runId,
    seq: s.seq,
    type: s.type,
    v: s.v,
    message:
      `event #${s.seq} (${s.type}, format version ${s.v}) of run ${s.runId} has step columns, which this version of ledgerflow keeps only for completions of format 1..${Event.FORMAT_VERSION}; upgrade ledgerflow to read this log`
  })

/** Whether serving the state's completions needs their bodies (`EventStore.readBodies`): some were folded without. */
export const needsBodies = (state: RunState): boolean => {
  for (const entry of state.steps.values()) {
    const output = entry.completed?.output
    if (output?._tag === "Stored" && !("data" in output.event)) return true
  }
  return false
}

/** The fold's state and its two inputs: a decoded event (`add`), or a completion from its step columns. */
const makeFolder = () => {
  let status: RunState["status"] = "new"
  let started: Event.RunStarted | undefined
  const steps = new Map<string, Mutable<StepEntry>>()
  const completionOrder: Array<string> = []
  let output: unknown
  let hasOutput = false
  let failure: RunState["failure"]
  let pivot: string | undefined
  const served: Array<string> = []
  let resumes = 0
  let count = 0

  const entry = (stepId: string, name: string, inputHash: string, at: number): Mutable<StepEntry> => {
    let e = steps.get(stepId)
    if (e === undefined) {
      e = {
        stepId,
        name,
        inputHash,
        failedAttempts: 0,
        firstStartedAt: at,
        budget: { attempts: 0, startedAt: at, drifts: 0 },
        usage: []
      }
      steps.set(stepId, e)
    }
    e.inputHash = inputHash
    e.firstStartedAt = Math.min(e.firstStartedAt, at)
    return e
  }

  /** A step completed (again): the same for a decoded `StepCompleted` and one folded from its columns. */
  const completion = (step: Event.StepColumns, at: number, output: Output, usage: ReadonlyArray<Usage>) => {
    count++
    const e = entry(step.stepId, step.name, step.inputHash, step.startedAt)
    delete e.inDoubt
    delete e.retryAt
    if (e.completed === undefined || e.compensation === "completed") {
      // A first completion, or a new one after the step was undone: it completes (again) now.
      if (e.compensation === "completed") completionOrder.splice(completionOrder.indexOf(step.stepId), 1)
      completionOrder.push(step.stepId)
      delete e.compensation
    }
    e.completed = { output, attempt: step.attempt, at, usage }
    if (usage.length > 0) e.usage = [...e.usage, ...usage]
    if (e.irreversible === true) pivot ??= step.stepId
  }

  const add = (event: Event.Event) => {
    if (event._tag === "StepCompleted") {
      return completion(event, event.at, { _tag: "Decoded", value: event.output }, event.usage ?? noUsage)
    }
    count++
    switch (event._tag) {
      case "RunStarted":
        status = "running"
        started = event
        break
      case "RunResumed":
        // After a failure the resumed run gets a fresh retry budget; a takeover after a crash keeps it.
        if (status !== "running") {
          for (const e of steps.values()) {
            if (e.completed === undefined) {
              e.budget = { attempts: 0, startedAt: undefined, drifts: 0 }
              delete e.retryAt
            }
          }
        }
        status = "running"
        failure = undefined
        resumes++
        break
      case "LeaseTaken":
        break
      case "StepStarted": {
        const e = entry(event.stepId, event.name, event.inputHash, event.at)
        e.inDoubt = { attempt: event.attempt, idempotencyKey: event.idempotencyKey }
        e.irreversible = true
        break
      }
      case "StepAttemptFailed": {
        const e = entry(event.stepId, event.name, event.inputHash, event.startedAt)
        delete e.inDoubt
        e.failedAttempts = Math.max(e.failedAttempts, event.attempt)
        const drift = event.failure.rule === "schema-drift"
        e.budget = {
          attempts: e.budget.attempts + (drift ? 0 : 1),
          startedAt: e.budget.startedAt ?? event.startedAt,
          drifts: e.budget.drifts + (drift ? 1 : 0)
        }
        if (event.retryDelayMs !== undefined) e.retryAt = event.at + event.retryDelayMs
        else delete e.retryAt
        e.lastFailure = { failure: event.failure, final: event.retryDelayMs === undefined, at: event.at }
        if (event.usage !== undefined) e.usage = [...e.usage, ...event.usage]
        break
      }
      case "StepFinding":
        // Findings are for reports (the cost ledger reads them from the log); they change no state.
        break
      case "StepsServed":
        served.push(...event.stepIds)
        break
      case "CompensationStarted":
      case "CompensationCompleted":
      case "CompensationFailed": {
        const e = steps.get(event.stepId)
        if (e === undefined) break
        e.compensation = event._tag === "CompensationCompleted"
          ? "completed"
          : event._tag === "CompensationFailed" && event.retryDelayMs === undefined
          ? "failed"
          : "started"
        break
      }
      case "RunCompleted":
        status = "completed"
        output = event.output
        hasOutput = true
        break
      case "RunFailed":
        status = "failed"
        failure = {
          failure: event.failure,
          fingerprint: event.fingerprint,
          ...(event.stepId !== undefined ? { stepId: event.stepId } : {})
        }
        break
      case "RunRolledBack":
        status = "rolled_back"
        break
      case "RunNeedsAttention":
        status = "needs_attention"
        break
      case "RunCancelled":
        status = "cancelled"
        break
      case "RunRedelivered":
        // A redelivery answered from the stored outcome: counted by the ledger, no change of state.
        break
    }
  }

  const state = (): RunState => ({
    status,
    ...(started !== undefined ? { started } : {}),
    steps,
    completionOrder,
    ...(hasOutput ? { output } : {}),
    ...(failure !== undefined ? { failure } : {}),
    served,
    ...(pivot !== undefined ? { pivot } : {}),
    resumes,
    events: count
  })

  return { add, completion, state }
}

/** A run with no events: what a new run starts from. */
export const empty: RunState = fold([])

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** A completion that stands: journaled and not undone by a compensation. */
export const isCompleted = (entry: StepEntry): boolean =>
  entry.completed !== undefined && entry.compensation !== "completed"
