/**
 * The three ways an execution treats its step calls, as strategies: `execute` (run or resume: what the
 * journal cannot serve is executed), `replay` (serve from the log, append nothing, run no body) and
 * `rollback` (serve from the log to rebuild the run's scope of compensations, then undo).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ReplayEntry } from "../Engine.js"
import type * as Journal from "../Journal.js"
import { type StepError, StepDiverged } from "../StepDefinition.js"
import type { RunOps } from "./runOps.js"
import * as StepRun from "./stepRun.js"

/** What a mode may do with the execution it runs in. */
export interface Host extends RunOps {
  /** Re-execute steps whose input differs from the journal's instead of refusing them. */
  readonly reexecuteDiverged: boolean
  readonly isClaimed: (stepId: string) => boolean
  /** Stop the replay at this call (logged); a rollback then undoes what the replay rebuilt. */
  readonly stopAt: (entry: ReplayEntry) => Effect.Effect<never>
  readonly log: (entry: ReplayEntry) => void
  /** Mark a step served, journaled (`StepsServed`) with the next append. */
  readonly markServed: (stepId: string) => void
  /** True once, in a rollback of a crashed run: the step the dead worker was in may be finished first. */
  readonly takeRollForward: () => boolean
}

/** A served call, as a mode sees it. */
export interface Served {
  readonly step: { readonly name: string }
  readonly stepId: string
  readonly inputHash: string
}

export interface Mode {
  readonly name: "execute" | "replay" | "rollback"
  /** Runs under the run's lease (a replay appends nothing, so it takes none). */
  readonly holdsLease: boolean
  /** Completions register their compensations in the run's scope (a replay has nothing to undo). */
  readonly rebuildsScope: boolean
  /** A call the journal has no completion for. */
  readonly unserved: <I, O, E, R>(
    host: Host,
    call: StepRun.Call<I, O, E, R>,
    prior: Journal.StepEntry | undefined
  ) => Effect.Effect<O, StepError, R>
  /** A call whose completion is unusable: another input, or an output its Schema no longer decodes. */
  readonly diverged: <I, O, E, R>(
    host: Host,
    call: StepRun.Call<I, O, E, R>,
    entry: Journal.StepEntry,
    why: { readonly message: string; readonly decodes: boolean }
  ) => Effect.Effect<O, StepError, R>
  /** A call served from `entry` (`reordered`: another occurrence's completion). */
  readonly served: (host: Host, call: Served, entry: Journal.StepEntry, reordered: boolean) => void
}

const divergence = (host: Host, stepId: string, expected: string, actual: string, message: string) =>
  new StepDiverged({ runId: host.runId, stepId, expectedInputHash: expected, actualInputHash: actual, message })

/** Where a replay cannot go on: the journal has nothing for this call. */
const notInJournal = <I, O, E, R>(host: Host, call: StepRun.Call<I, O, E, R>, prior: Journal.StepEntry | undefined) =>
  host.stopAt({
    stepId: call.stepId,
    name: call.step.name,
    outcome: "not-in-journal",
    inputHash: call.inputHash,
    message: prior?.lastFailure !== undefined
      ? `the run stopped at this step: ${prior.lastFailure.failure.reason}`
      : "the journal has no completion for this step"
  })

const stopDiverged: Mode["diverged"] = (host, call, entry, why) =>
  host.stopAt({
    stepId: why.decodes ? call.stepId : entry.stepId,
    name: call.step.name,
    outcome: "diverged",
    inputHash: call.inputHash,
    ...(why.decodes ? { expectedInputHash: entry.inputHash } : {}),
    message: why.message
  })

const logServed: Mode["served"] = (host, call, entry, reordered) =>
  host.log(
    reordered
      ? {
        stepId: call.stepId,
        name: call.step.name,
        outcome: "reordered",
        servedFrom: entry.stepId,
        inputHash: call.inputHash,
        message: `served from ${entry.stepId}: concurrent calls of ${call.step.name} started in another order`
      }
      : { stepId: entry.stepId, name: call.step.name, outcome: "served", inputHash: call.inputHash }
  )

export const execute: Mode = {
  name: "execute",
  holdsLease: true,
  rebuildsScope: true,
  unserved: (host, call, prior) => StepRun.execute(host, call, prior),
  diverged: (host, call, entry, why) => {
    if (!why.decodes) return Effect.fail(divergence(host, entry.stepId, entry.inputHash, call.inputHash, why.message))
    if (host.reexecuteDiverged && !host.isClaimed(call.stepId)) return StepRun.execute(host, call, entry)
    return Effect.fail(divergence(
      host,
      call.stepId,
      entry.inputHash,
      call.inputHash,
      `${why.message}; resume with re-execution of diverged steps to run it again`
    ))
  },
  served: (host, _call, entry) => host.markServed(entry.stepId)
}

export const replay: Mode = {
  name: "replay",
  holdsLease: false,
  rebuildsScope: false,
  unserved: notInJournal,
  diverged: stopDiverged,
  served: logServed
}

export const rollback: Mode = {
  name: "rollback",
  holdsLease: true,
  rebuildsScope: true,
  unserved: (host, call, prior) => {
    const { step } = call
    if (step.irreversible && prior?.inDoubt !== undefined) {
      // Before undoing anything, learn whether the in-doubt irreversible step happened: if it did, the run
      // is past its pivot and nothing before it may be undone.
      return Effect.flatMap(
        StepRun.reconcile(host, call, prior.inDoubt),
        Option.match({
          onNone: () =>
            host.stopAt({ stepId: call.stepId, name: step.name, outcome: "not-in-journal", inputHash: call.inputHash }),
          onSome: Effect.succeed
        })
      )
    }
    if (
      step.compensate !== undefined && !step.keepOnRollback && prior?.lastFailure?.final !== true &&
      host.takeRollForward()
    ) {
      // The dead worker may have been inside this step's body: its effect may exist with nothing in the
      // journal to undo it. Run it once more (steps that are not irreversible may be repeated) to reach a
      // known state; its compensation then undoes it with the rest.
      return StepRun.execute(host, call, prior)
    }
    return notInJournal(host, call, prior)
  },
  diverged: stopDiverged,
  served: logServed
}
