/**
 * How an execution's program ended, as one value the engine acts on (`Outcome`), and what closing the run's
 * scope did (`Settled`).
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { ReplayEntry } from "../Engine.js"
import * as Failure from "../Failure.js"
import { DuplicateStepName, StepDiverged } from "../StepDefinition.js"
import { LeaseLost } from "../StoreError.js"
import type { Attention, Stop } from "./runOps.js"
import { classifyCause } from "./stepRun.js"

/** How the pipeline's program ended, and where the run stood then. */
export type Outcome<A> = (
  | { readonly _tag: "Completed"; readonly value: A }
  /** `reported`: what the caller gets when it is not the failure itself (a divergence, a duplicate name). */
  | {
    readonly _tag: "Failed"
    readonly failure: Failure.Failure
    readonly stepId: string | undefined
    readonly reported: StepDiverged | DuplicateStepName | undefined
    readonly exit: Exit.Exit<unknown, unknown>
  }
  | { readonly _tag: "Interrupted"; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "Stopped"; readonly reason: Stop }
  | { readonly _tag: "ReplayStopped"; readonly entry: ReplayEntry }
) & { readonly progress: Progress }

export interface Progress {
  /** The first irreversible step completed: nothing before it may be undone. */
  readonly pivot: string | undefined
  readonly attention: Attention | undefined
  /** Steps whose compensation is registered in the run's scope, in completion order. */
  readonly compensable: ReadonlyArray<string>
}

/** What closing the run's scope did, and what the calls were (for a replay's report). */
export interface Settled extends Progress {
  /** Compensations that ran to effect, in the order they ran. */
  readonly compensated: ReadonlyArray<string>
  /** Step ids served from the log. */
  readonly served: ReadonlyArray<string>
  readonly log: ReadonlyArray<ReplayEntry>
}

/**
 * The outcome of a program's `exit`: a stop from inside wins (the program was interrupted for it); then
 * success, interruption by the caller, or a failure — classified, with the step it came from.
 */
/** Why an execution stopped from inside: the store refused it, or a replay reached a call it cannot serve. */
export type Stopped = Stop | { readonly _tag: "ReplayStopped"; readonly entry: ReplayEntry }

export const outcomeOf = <A>(
  exit: Exit.Exit<A, unknown>,
  stopped: Stopped | undefined,
  progress: Progress,
  failedSteps: WeakMap<object, string>
): Outcome<A> => {
  if (stopped !== undefined) {
    return stopped._tag === "ReplayStopped"
      ? { _tag: "ReplayStopped", entry: stopped.entry, progress }
      : { _tag: "Stopped", reason: stopped, progress }
  }
  if (Exit.isSuccess(exit)) return { _tag: "Completed", value: exit.value, progress }
  if (Cause.isInterruptedOnly(exit.cause)) return { _tag: "Interrupted", exit, progress }
  const error = Cause.failureOption(exit.cause)
  if (Option.isSome(error) && error.value instanceof LeaseLost) return { _tag: "Stopped", reason: error.value, progress }
  if (Option.isSome(error) && (error.value instanceof StepDiverged || error.value instanceof DuplicateStepName)) {
    const rule = error.value instanceof StepDiverged ? "divergence" : "duplicate-step-name"
    const failure = Failure.deterministic(error.value.message, { rule })
    return { _tag: "Failed", failure, stepId: error.value.stepId, reported: error.value, exit, progress }
  }
  const failure = Option.isSome(error) && Failure.isFailure(error.value) ? error.value : classifyCause(exit.cause, undefined)
  // The step is known by the error it failed with (a Failure, or a class carrying one, like BudgetExceeded).
  const stepId = failedSteps.get(Option.isSome(error) && typeof error.value === "object" && error.value !== null ? error.value : failure)
  return { _tag: "Failed", failure, stepId, reported: undefined, exit, progress }
}
