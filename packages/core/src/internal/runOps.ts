/**
 * What the code executing a step call (its attempts, its reconcile, its compensation) may ask of the
 * execution it runs in. The execution implements it; nothing else holds its state.
 */
import type * as Clock from "effect/Clock"
import type * as Effect from "effect/Effect"
import type * as Event from "../Event.js"
import type { LeaseLost, SeqConflict, StoreError } from "../StoreError.js"
import type { Definition } from "../StepDefinition.js"
import type { BudgetTracker } from "./budget.js"

/** Why an execution stopped from inside: the store refused it, or its log is damaged where it read. */
export type Stop = LeaseLost | SeqConflict | StoreError | Event.UnknownEvent

/** The run cannot go on by itself: what happened and which steps still need a person. */
export interface Attention {
  readonly reason: string
  readonly pending: ReadonlyArray<string>
}

export interface RunOps {
  readonly runId: string
  /** The run's fencing token held by this execution. */
  readonly token: number
  /** The execution's clock (the fiber's `Clock` when it started): the step path reads it directly. */
  readonly clock: Clock.Clock
  /** Spans are made (a tracer was provided): see `tracing.ts`. */
  readonly traced: boolean
  /** The run's budget, when it has one: what it spent and the estimates of attempts in flight. */
  readonly budget: BudgetTracker | undefined
  /** Until when this worker's lease is known to hold. */
  readonly leaseExpiresAt: () => number
  /**
   * Append under the run's fencing token (after the marks of steps served since the last append). When
   * the store refuses, the execution stops: the caller is interrupted and nothing after it runs.
   */
  readonly append: (events: ReadonlyArray<Event.Event>) => Effect.Effect<void>
  /**
   * `append`, then `next` once the store took the events; built when called, so call it where the append is
   * due (inside the effect that runs it). The step path's append: no effect of its own besides the store's.
   */
  readonly appendThen: <A, E, R>(
    events: ReadonlyArray<Event.Event>,
    next: () => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  /** Stop the execution from inside: the caller is interrupted, the engine is told why. */
  readonly stop: (reason: Stop) => Effect.Effect<never>
  /**
   * A step's completion stands (executed, reconciled or served): its journal entry is taken by this call,
   * the pivot set, its compensation registered.
   */
  readonly completed: <I, O, E, R>(step: Definition<I, O, E, R>, stepId: string, input: I, output: O) => Effect.Effect<O, never, R>
  /** Which step a failure came from, for the run's `RunFailed`. */
  readonly failedAt: (failure: object, stepId: string) => void
  /** An irreversible step is in doubt: the run is past its pivot (if not already) and needs a person. */
  readonly inDoubt: (stepId: string, attention: Attention) => void
}
