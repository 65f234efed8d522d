/**
 * Recovery: find the runs whose worker died (lease lapsed while running or compensating) and finish them —
 * resume, or roll back when the pipeline says `onCrash: "rollback"` or the run was already undoing, except
 * a run past its pivot, which only goes forward: it is resumed. Each result states the run's real status.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { RecoveredRun, RecoverOptions } from "../Engine.js"
import type { RunRecord } from "../EventStore.js"
import type * as Pipeline from "../Pipeline.js"
import type { StoreError } from "../StoreError.js"
import { type Core, waitForLease } from "./core.js"
import { takeOver } from "./executeRun.js"
import { undo } from "./existing.js"
import { leaseLapsed } from "./owner.js"

export const recover = <P extends Pipeline.Any>(
  core: Core,
  pipelines: ReadonlyArray<P>,
  options: RecoverOptions = {}
): Effect.Effect<ReadonlyArray<RecoveredRun>, StoreError, Pipeline.Requirements<P>> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const found = [
      ...(yield* core.store.listRuns({ status: "running" })),
      ...(yield* core.store.listRuns({ status: "compensating" }))
    ]
    const stale = options.ifRunning === "wait" ? found : found.filter((r) => leaseLapsed(r, now) !== undefined)
    const byName = new Map(pipelines.map((p) => [p.name, p]))
    const results: Array<RecoveredRun> = []
    for (const listed of stale) {
      const pipeline = byName.get(listed.pipeline)
      results.push(
        pipeline === undefined
          ? { runId: listed.runId, pipeline: listed.pipeline, action: "skipped", outcome: "no such pipeline given", status: listed.status }
          : yield* recoverOne(core, pipeline, listed)
      )
    }
    return results
    // The loop runs pipelines of type `P`: what they need is `Requirements<P>` (erased to any inside).
  }) as Effect.Effect<ReadonlyArray<RecoveredRun>, StoreError, Pipeline.Requirements<P>>

const recoverOne = (core: Core, pipeline: Pipeline.Any, listed: RunRecord) =>
  Effect.gen(function*() {
    // Waiting for a live lease: until its worker finishes the run, or dies (its process gone, or its lease
    // run out).
    let r = listed
    let lapsed = leaseLapsed(r, yield* Clock.currentTimeMillis)
    while ((r.status === "running" || r.status === "compensating") && lapsed === undefined) {
      yield* waitForLease(core, r, yield* Clock.currentTimeMillis)
      r = Option.getOrElse(yield* core.store.getRun(r.runId), () => r)
      lapsed = leaseLapsed(r, yield* Clock.currentTimeMillis)
    }
    if ((r.status !== "running" && r.status !== "compensating") || lapsed === undefined) {
      return { runId: r.runId, pipeline: r.pipeline, action: "skipped", outcome: `finished by ${r.owner}`, status: r.status } satisfies RecoveredRun
    }
    const back = r.status === "compensating" || pipeline.onCrash === "rollback"
    const resume = (run: RunRecord, requireExpired: boolean, why: string) =>
      takeOver(core, pipeline, run, { reason: `${why}; recovered by ${core.owner}`, requireExpired })
    const timedOut = lapsed.timedOut
    const why = lapsed.why
    const exit = yield* Effect.exit(
      back
        ? Effect.flatMap(undo(core, pipeline, r.runId, { onPastPivot: "resume" }), (done) =>
          done._tag === "RolledBack"
            ? Effect.succeed("rolled back" as const)
            : Effect.as(
              done.leased === undefined
                ? resume(r, timedOut, `${why}; past its pivot (${done.error.stepId}), so resumed, not rolled back`)
                : resume(done.leased, false, `past its pivot (${done.error.stepId} reconciled as done), so resumed, not rolled back`),
              "resumed" as const
            ))
        : Effect.as(resume(r, timedOut, why), "resumed" as const)
    )
    const status = Option.match(yield* core.store.getRun(r.runId), { onNone: () => r.status, onSome: (after) => after.status })
    return {
      runId: r.runId,
      pipeline: r.pipeline,
      action: Exit.isSuccess(exit) ? exit.value : back ? "rolled back" : "resumed",
      outcome: Exit.isSuccess(exit) ? "ok" : Cause.pretty(exit.cause).split("\n")[0] ?? "failed",
      status
    } satisfies RecoveredRun
  })
