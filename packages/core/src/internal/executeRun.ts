/**
 * Executing a run under its lease, against its journal, and journaling how it ended: completed; failed,
 * then undone (compensations in reverse) unless past its pivot; or stopped from inside (the store refused,
 * the log is damaged), undoing nothing.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import type { RunError } from "../Engine.js"
import * as Event from "../Event.js"
import type { RunRecord } from "../EventStore.js"
import * as Failure from "../Failure.js"
import type * as Journal from "../Journal.js"
import type * as Pipeline from "../Pipeline.js"
import * as Pricing from "../Pricing.js"
import type { RunContext } from "../RunContext.js"
import { BudgetTracker } from "./budget.js"
import { bodiesOf, type Core, journalOf, lease } from "./core.js"
import { Execution } from "./execution.js"
import type { Outcome, Progress } from "./outcome.js"
import type { Mode } from "./modes.js"
import * as Modes from "./modes.js"
import type { Stop } from "./runOps.js"
import { classifyCause, journalable } from "./stepRun.js"
import * as Tracing from "./tracing.js"

export interface ExecutionOptions {
  readonly mode: Mode
  /** Re-execute steps whose input differs from the journal's instead of refusing them (default false). */
  readonly reexecuteDiverged?: boolean | undefined
  /** The run's worker died mid-run (a rollback of a crash, not of a known failure). */
  readonly crashed?: boolean
  /** The run's spending limit (the pipeline's, overridden by the run's), priced with the `Pricing` service. */
  readonly budget?: Pipeline.Budget | undefined
}

/** A new execution of `run` against `state`, in its own scope. */
export const open = (core: Core, pipeline: Pipeline.Any, run: RunRecord, state: Journal.RunState, options: ExecutionOptions) =>
  Effect.gen(function*() {
    // Looked up once per execution, not per step: the `Pricing` service when provided, else the default table.
    const budget = options.budget === undefined ? undefined : new BudgetTracker(
      run.runId,
      options.budget,
      yield* Pricing.current,
      state
    )
    const bodies = yield* bodiesOf(core, run.runId, state)
    const scope = yield* Scope.make()
    const clock = yield* Effect.clock
    return new Execution({
      runId: run.runId,
      key: run.key,
      pipeline: pipeline.name,
      mode: options.mode,
      reexecuteDiverged: options.reexecuteDiverged ?? false,
      state,
      bodies,
      store: core.store,
      leases: core.leases,
      token: run.leaseToken,
      leaseExpiresAt: run.leaseExpiresAt,
      clock,
      budget,
      crashed: options.crashed ?? false
    }, scope)
  })

/** The pipeline's budget overridden field by field by the run's, if either has one. */
const budgetOf = (pipeline: Pipeline.Any, runBudget: Pipeline.Budget | undefined) =>
  pipeline.budget === undefined && runBudget === undefined ? undefined : { ...pipeline.budget, ...runBudget }

/** Execute the pipeline under the run's lease, against its journal; journal the outcome. */
export const execute = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  input: I,
  run: RunRecord,
  state: Journal.RunState,
  options: { readonly reexecuteDiverged?: boolean | undefined; readonly budget?: Pipeline.Budget | undefined } = {}
): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    const execution = yield* open(core, pipeline, run, state, {
      mode: Modes.execute,
      reexecuteDiverged: options.reexecuteDiverged,
      budget: budgetOf(pipeline, options.budget)
    })
    if (pipeline.preflight !== undefined) {
      const checked = yield* Effect.exit(execution.within(pipeline.preflight))
      if (Exit.isFailure(checked)) {
        if (Cause.isInterruptedOnly(checked.cause)) return yield* Effect.interrupt
        const why = classifyCause(checked.cause, undefined)
        const failure = Failure.deterministic(
          `the preflight of pipeline ${pipeline.name} failed, before any step ran: ${why.reason}`,
          { rule: "preflight", ...(why.cause !== undefined ? { cause: why.cause } : {}) }
        )
        const progress: Progress = { pivot: undefined, attention: undefined, compensable: [] }
        return yield* fail(execution, { _tag: "Failed", failure, stepId: "preflight", reported: undefined, exit: Exit.fail(failure), progress })
      }
    }
    const outcome = yield* execution.run(() => pipeline.run(input))
    return yield* finish(execution, pipeline, outcome)
  }).pipe(
    runSpan(run, "execute"),
    // Interrupted by its caller: give the lease up so that another start can resume the run at once.
    Effect.onInterrupt(() => releaseLease(core, run.runId, run.leaseToken))
  )

/**
 * A run's span: an execution of it (a start, a resume, a replay, a rollback), its steps and compensations
 * inside. Its attributes are built only when traced: an untraced execution allocates nothing for it.
 */
export const runSpan = (run: RunRecord, mode: Mode["name"]) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Tracing.current((on) =>
    on
      ? Tracing.span(true, "ledgerflow.run", {
        attributes: {
          "ledgerflow.run_id": run.runId,
          "ledgerflow.pipeline": run.pipeline,
          "ledgerflow.pipeline.version": run.version,
          "ledgerflow.key": run.key,
          "ledgerflow.mode": mode
        }
      })(effect)
      : effect
  )

const finish = <I, O, E, R>(
  execution: Execution,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  outcome: Outcome<O>
): Effect.Effect<O, RunError> => {
  switch (outcome._tag) {
    case "Completed": {
      const journaled = journalable(pipeline, outcome.value, `pipeline ${pipeline.name}`)
      if (Either.isLeft(journaled)) {
        const failure = journaled.left
        return fail(execution, { _tag: "Failed", failure, stepId: undefined, reported: undefined, exit: Exit.fail(failure), progress: outcome.progress })
      }
      return Effect.flatMap(Clock.currentTimeMillis, (at) =>
        // Not synced on its own: if it is lost, the next start serves every step from the log and ends the run
        // the same way. The steps it rests on were synced.
        execution.journal([Event.make(Event.RunCompleted, { at, output: journaled.right })], { status: "completed" }, false)
      ).pipe(Effect.zipRight(execution.close(Exit.void)), Effect.as(outcome.value))
    }
    case "Failed":
      return fail(execution, outcome)
    case "Interrupted":
      return Effect.zipRight(Effect.ignore(execution.close(outcome.exit)), Effect.interrupt)
    case "Stopped":
      // Stopped from inside (stale lease, store failure, damaged log): another worker may own the run, or the
      // log needs a look; undo nothing.
      return Effect.zipRight(Effect.ignore(execution.close(Exit.interrupt(FiberId.none))), Effect.fail(outcome.reason))
    case "ReplayStopped":
      // Not reached in `execute` mode (only replay and rollback stop at a call); closed as a stop.
      return Effect.zipRight(Effect.ignore(execution.close(Exit.interrupt(FiberId.none))), Effect.interrupt)
  }
}

/**
 * Journal the run's failure, then close its scope with it: the compensations of completed steps run in
 * reverse order (unless the run is past its pivot), and the run ends rolled back or needing attention.
 */
const fail = (execution: Execution, failed: Extract<Outcome<unknown>, { readonly _tag: "Failed" }>): Effect.Effect<never, RunError> =>
  Effect.gen(function*() {
    const { failure, stepId, progress } = failed
    const at = yield* Clock.currentTimeMillis
    const fingerprint = `${stepId?.replace(/#\d+$|\[.*\]$/, "") ?? ""}|${Failure.fingerprint(failure)}`
    const undo = progress.pivot === undefined && progress.attention === undefined && progress.compensable.length > 0
    yield* execution.journal([
      Event.make(Event.RunFailed, { at, failure, fingerprint, ...(stepId !== undefined ? { stepId } : {}) })
    ], {
      status: undo ? "compensating" : "failed",
      failure: {
        failureClass: Failure.classification(failure),
        failureFingerprint: fingerprint,
        failureReason: failure.reason
      }
    })
    const settled = yield* execution.close(failed.exit)
    yield* settle(execution, { ...settled, undo, failure })
    // Every failure a run returns names its run, and its step where a step failed.
    return yield* Effect.fail(failed.reported ?? Failure.inRun(failure, execution.runId, stepId))
  })

/** After the scope closed: journal where the undo left the run. */
export const settle = (
  execution: Execution,
  where: Progress & { readonly undo: boolean; readonly failure: Failure.Failure | undefined }
): Effect.Effect<void, Stop> =>
  Effect.flatMap(Clock.currentTimeMillis, (at) => {
    if (where.attention !== undefined) {
      return execution.journal([
        Event.make(Event.RunNeedsAttention, { at, reason: where.attention.reason, pending: where.attention.pending })
      ], { status: "needs_attention" })
    }
    if (where.undo) return execution.journal([Event.make(Event.RunRolledBack, { at })], { status: "rolled_back" })
    if (where.pivot !== undefined && where.failure !== undefined && Failure.isDeterministic(where.failure)) {
      return execution.journal([
        Event.make(Event.RunNeedsAttention, {
          at,
          reason:
            `the run is past its pivot (irreversible step ${where.pivot} completed), so it cannot be rolled back, and it failed deterministically: fix the cause and resume it`,
          pending: []
        })
      ], { status: "needs_attention" })
    }
    return Effect.void
  })

/** Give the lease up at once (the caller interrupted us): another start may take over immediately. */
const releaseLease = (core: Core, runId: string, token: number) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => core.store.renew({ runId, token, now, leaseExpiresAt: now }))
    .pipe(Effect.ignore)

export interface TakeOver {
  readonly reason: string
  readonly requireExpired: boolean
  readonly reexecuteDiverged?: boolean | undefined
  readonly budget?: Pipeline.Budget | undefined
}

/** Take a run over (CAS on its fencing token), then execute it from its journal. */
export const takeOver = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  run: RunRecord,
  options: TakeOver
): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    const acquired = yield* lease(core, run, {
      reason: options.reason,
      requireExpired: options.requireExpired,
      patch: { status: "running", failure: null }
    })
    const { input, state } = yield* journalOf(core, pipeline, run)
    return yield* execute(core, pipeline, input, acquired, state, options)
  })
