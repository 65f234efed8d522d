/**
 * The journal: a run's event log folded into what the engine needs to resume it — which steps completed
 * (with their encoded outputs), how many attempts each has spent, and the run's outcome. A pure fold.
 */
import type * as Event from "./Event.js"
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
    readonly output: unknown
    readonly attempt: number
    readonly at: number
    readonly usage: ReadonlyArray<Usage>
  }
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
  readonly resumes: number
  readonly events: number
}

/**
 * Fold a run's events, in seq order, into its state. Events of different steps commute; per step, order
 * matters. The fold mutates only values it created, so it is linear in the number of events.
 */
export const fold = (events: Iterable<Event.Event>): RunState => {
  let status: RunState["status"] = "new"
  let started: Event.RunStarted | undefined
  const steps = new Map<string, Mutable<StepEntry>>()
  const completionOrder: Array<string> = []
  let output: unknown
  let hasOutput = false
  let failure: RunState["failure"]
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

  for (const event of events) {
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
      case "StepCompleted": {
        const e = entry(event.stepId, event.name, event.inputHash, event.startedAt)
        delete e.inDoubt
        delete e.retryAt
        if (e.completed === undefined || e.compensation === "completed") {
          // A first completion, or a new one after the step was undone: it completes (again) now.
          if (e.compensation === "completed") completionOrder.splice(completionOrder.indexOf(event.stepId), 1)
          completionOrder.push(event.stepId)
          delete e.compensation
        }
        const usage = event.usage ?? []
        e.completed = { output: event.output, attempt: event.attempt, at: event.at, usage }
        if (usage.length > 0) e.usage = [...e.usage, ...usage]
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
    }
  }
  return {
    status,
    ...(started !== undefined ? { started } : {}),
    steps,
    completionOrder,
    ...(hasOutput ? { output } : {}),
    ...(failure !== undefined ? { failure } : {}),
    served,
    resumes,
    events: count
  }
}

/** A run with no events: what a new run starts from. */
export const empty: RunState = fold([])

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** A completion that stands: journaled and not undone by a compensation. */
export const isCompleted = (entry: StepEntry): boolean =>
  entry.completed !== undefined && entry.compensation !== "completed"
