/**
 * Operations on a run that exists, by id: resume it, replay it without side effects, or undo it. Each opens
 * the run the same way (`openRun`: found, of this pipeline, its journal and input read back).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { EngineError, ReplayReport, ResumeOptions, RollbackOptions, RollbackReport, RunError } from "../Engine.js"
import * as Event from "../Event.js"
import type { RunRecord } from "../EventStore.js"
import type * as Failure from "../Failure.js"
import type * as Journal from "../Journal.js"
import type * as Pipeline from "../Pipeline.js"
import type { RunContext } from "../RunContext.js"
import type { PastPivot } from "../RunError.js"
import { RunNotResumable } from "../RunError.js"
import {
  checkPipeline,
  type Core,
  getRun,
  inProgress,
  journalOf,
  lease,
  notResumable,
  pastPivot,
  readState,
  stored,
  waitForLease
} from "./core.js"
import type { Execution } from "./execution.js"
import { open, runSpan, settle, takeOver } from "./executeRun.js"
import * as Modes from "./modes.js"
import { type Lapse, leaseLapsed } from "./owner.js"

/** A run by id (or prefix) of this pipeline. */
const openRun = (core: Core, pipeline: { readonly name: string }, runId: string) =>
  Effect.tap(getRun(core, runId), (run) => checkPipeline(pipeline, run))

export const resume = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options: ResumeOptions = {}
): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    const again = { reexecuteDiverged: options.reexecuteDiverged, budget: options.budget }
    while (true) {
      const existing = yield* openRun(core, pipeline, runId)
      const now = yield* Clock.currentTimeMillis
      switch (existing.status) {
        case "completed":
          return yield* stored(core, pipeline, existing)
        case "failed":
        case "rolled_back":
        case "needs_attention":
          return yield* takeOver(core, pipeline, existing, { ...again, reason: "resumed explicitly", requireExpired: false })
        case "running": {
          const lapsed = leaseLapsed(existing, now)
          if (lapsed !== undefined) {
            return yield* takeOver(core, pipeline, existing, { ...again, reason: `${lapsed.why}; resumed`, requireExpired: lapsed.timedOut })
          }
          if (options.ifRunning !== "wait") return yield* Effect.fail(inProgress(existing))
          // A live owner: wait for it to finish or die, as a start by key waits (`ifRunning: "wait"`).
          yield* waitForLease(core, existing, now)
          continue
        }
        default:
          return yield* Effect.fail(notResumable(existing))
      }
    }
  })

export const replay = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string
): Effect.Effect<ReplayReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    const existing = yield* openRun(core, pipeline, runId)
    const { state, input } = yield* journalOf(core, pipeline, existing)
    const execution = yield* open(core, pipeline, existing, state, { mode: Modes.replay })
    const outcome = yield* runSpan(existing, "replay")(execution.run(() => pipeline.run(input)))
    // A replay appends nothing, so the store cannot stop it; a damaged completion it served can.
    if (outcome._tag === "Stopped") return yield* Effect.fail(outcome.reason)
    const replayed = yield* execution.close(Exit.void)
    const claimed = new Set(replayed.served)
    const unclaimed = state.completionOrder.filter((id) => !claimed.has(id))
    const stop = outcome._tag === "ReplayStopped" ? outcome.entry : undefined
    const diverged = replayed.log.some((e) => e.outcome === "diverged") ||
      (stop?.outcome === "not-in-journal" && state.status === "completed") ||
      (stop === undefined && unclaimed.length > 0)
    const reordered = replayed.log.some((e) => e.outcome === "reordered")
    return {
      runId: existing.runId,
      pipeline: pipeline.name,
      steps: replayed.log,
      unclaimed,
      outcome: diverged ? "diverged" : stop !== undefined ? "incomplete" : reordered ? "reordered" : "identical"
    } satisfies ReplayReport
  })

/**
 * What undoing a run came to: rolled back (as far as it went), or refused because the run is past its
 * pivot — found in the journal before anything was taken (`leased` undefined), or learnt while rebuilding
 * the scope, when the reconcile of an in-doubt irreversible step said it happened (`leased`: the run's
 * record under this engine's lease, nothing undone).
 */
export type Undo =
  | { readonly _tag: "RolledBack"; readonly report: RollbackReport }
  | { readonly _tag: "PastPivot"; readonly error: PastPivot; readonly leased: RunRecord | undefined }

/**
 * Undo a failed run: rebuild its scope by replaying the pipeline against the journal (no body runs), then
 * close it as failed so the pending compensations run in reverse order. A run past its pivot is not
 * undone: the caller resumes it (recovery) or refuses (an explicit rollback).
 */
export const undo = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options: RollbackOptions & { readonly onPastPivot: "refuse" | "resume" }
): Effect.Effect<Undo, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    let existing = yield* openRun(core, pipeline, runId)
    // Why the holder's lease no longer holds (timed out, or its process on this host is gone), if held.
    let lapsed: Lapse | undefined
    while (true) {
      const now = yield* Clock.currentTimeMillis
      if (existing.status === "completed") {
        return yield* Effect.fail(new RunNotResumable({
          runId: existing.runId,
          status: existing.status,
          message: `run ${existing.runId} completed; a completed run is not rolled back (compensate in a new run if you must undo it)`
        }))
      }
      if (existing.status === "rolled_back") {
        const report = { runId: existing.runId, compensated: [], pending: [], status: existing.status, message: "already rolled back" }
        return { _tag: "RolledBack", report } satisfies Undo
      }
      const held = existing.status === "running" || existing.status === "compensating"
      lapsed = held ? leaseLapsed(existing, now) : undefined
      if (!held || lapsed !== undefined) break
      if (options.ifRunning !== "wait") return yield* Effect.fail(inProgress(existing))
      yield* waitForLease(core, existing, now)
      existing = yield* getRun(core, existing.runId)
    }
    // Past its pivot in the journal: refused before anything is taken or written.
    const before: Journal.RunState = yield* readState(core, existing.runId)
    if (before.pivot !== undefined) {
      return { _tag: "PastPivot", error: pastPivot(existing, before.pivot), leased: undefined } satisfies Undo
    }
    const acquired = yield* lease(core, existing, {
      reason: "rollback",
      requireExpired: lapsed?.timedOut ?? false,
      patch: { status: "compensating" }
    })
    const { state, input } = yield* journalOf(core, pipeline, acquired)
    const execution = yield* open(core, pipeline, acquired, state, { mode: Modes.rollback, crashed: state.status === "running" })
    return yield* rebuildAndUndo(core, pipeline, input, acquired, state, execution, options).pipe(runSpan(acquired, "rollback"))
  })

/** Rebuild the run's scope by replaying it, then close the scope as failed: the compensations run. */
const rebuildAndUndo = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  input: I,
  acquired: RunRecord,
  state: Journal.RunState,
  execution: Execution,
  options: { readonly onPastPivot: "refuse" | "resume" }
): Effect.Effect<Undo, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    const outcome = yield* execution.run(() => pipeline.run(input))
    if (outcome._tag === "Stopped") {
      yield* Effect.ignore(execution.close(Exit.interrupt(FiberId.none)))
      return yield* Effect.fail(outcome.reason)
    }
    if (outcome.progress.pivot !== undefined && outcome.progress.attention === undefined) {
      // The reconcile of an in-doubt irreversible step said it happened: past the pivot now. Undo nothing.
      yield* Effect.ignore(execution.close(Exit.interrupt(FiberId.none)))
      const error = pastPivot(acquired, outcome.progress.pivot, options.onPastPivot === "refuse" ? "needs_attention" : "running")
      if (options.onPastPivot === "refuse") {
        const at = yield* Clock.currentTimeMillis
        yield* execution.journal([Event.make(Event.RunNeedsAttention, { at, reason: error.message, pending: [] })], {
          status: "needs_attention"
        })
      }
      const leased = yield* getRun(core, acquired.runId)
      return { _tag: "PastPivot", error, leased } satisfies Undo
    }
    // What the run failed with; a crashed run (no failure in its log) is undone as it stands, no failure invented.
    const failure = state.failure?.failure
    const settled = yield* execution.close(Exit.fail(failure ?? "rollback"))
    yield* settle(execution, { ...settled, undo: settled.attention === undefined, failure })
    const after = yield* getRun(core, acquired.runId)
    const report = {
      runId: acquired.runId,
      compensated: settled.compensated,
      pending: settled.attention?.pending ?? [],
      status: after.status,
      message: settled.attention?.reason ?? `rolled back: ${settled.compensated.length} compensation(s) ran`
    } satisfies RollbackReport
    return { _tag: "RolledBack", report } satisfies Undo
  })

/** An explicit rollback: a run past its pivot is refused (`PastPivot`), left as it was. */
export const rollback = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options: RollbackOptions = {}
): Effect.Effect<RollbackReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
  Effect.flatMap(
    undo(core, pipeline, runId, { ...options, onPastPivot: "refuse" }),
    (done) => done._tag === "RolledBack" ? Effect.succeed(done.report) : Effect.fail(done.error)
  )
