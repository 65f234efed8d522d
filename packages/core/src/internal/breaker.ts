/**
 * The storm breaker: a pipeline version whose latest runs all failed deterministically the same way refuses
 * new runs before they spend anything. Read from the runs' projection, so every process sees one breaker.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { BreakerState } from "../Engine.js"
import type { RunRecord } from "../EventStore.js"
import type * as Pipeline from "../Pipeline.js"
import { CircuitOpen } from "../RunError.js"
import type { StoreError } from "../StoreError.js"
import type { Core } from "./core.js"

const settingKey = (pipeline: { readonly name: string; readonly version: string }) =>
  `breaker-reset:${pipeline.name}@${pipeline.version}`

/**
 * Open when the latest `threshold` runs of this pipeline version (since the last reset) all failed
 * deterministically with one fingerprint.
 */
export const state = (core: Core, pipeline: Pipeline.Any): Effect.Effect<BreakerState, StoreError> =>
  Effect.gen(function*() {
    const threshold = pipeline.breakerThreshold
    const closed: BreakerState = { pipeline: pipeline.name, version: pipeline.version, threshold, open: undefined }
    if (threshold === 0) return closed
    // The common case in one read of one row: when the latest run of the version did not fail
    // deterministically, the breaker is closed, whenever it was last reset (that run is the latest since the
    // reset, or no run followed the reset).
    const [newest] = yield* core.store.listRuns({ pipeline: pipeline.name, version: pipeline.version, limit: 1 })
    if (newest === undefined || !failedDeterministically(newest)) return closed
    const reset = yield* core.store.getSetting(settingKey(pipeline))
    const since = Option.match(reset, { onNone: () => undefined, onSome: (at) => Number(at) + 1 })
    const latest = yield* core.store.listRuns({ pipeline: pipeline.name, version: pipeline.version, since, limit: threshold })
    const fingerprint = latest[0]?.failureFingerprint
    const tripped = latest.length === threshold && fingerprint !== undefined &&
      latest.every((r) => failedDeterministically(r) && r.failureFingerprint === fingerprint)
    if (!tripped) return closed
    const runs = latest.map((r) => r.runId)
    return {
      ...closed,
      open: new CircuitOpen({
        pipeline: pipeline.name,
        version: pipeline.version,
        fingerprint,
        runs,
        message:
          `the storm breaker of pipeline ${pipeline.name}@${pipeline.version} is open: its last ${threshold} runs (${
            runs.join(", ")
          }) failed deterministically the same way (${latest[0]?.failureReason ?? fingerprint}); fix the cause, then bump the pipeline version or reset the breaker`
      })
    }
  })

/** A run that ended failing deterministically (rolled back or waiting for a person counts: it failed). */
const failedDeterministically = (run: RunRecord) =>
  run.failureClass === "deterministic" && run.status !== "running" && run.status !== "completed"

/** Refuse a new run while the breaker is open: before it spends anything. */
export const check = (core: Core, pipeline: Pipeline.Any): Effect.Effect<void, CircuitOpen | StoreError> =>
  Effect.flatMap(state(core, pipeline), (s) => s.open === undefined ? Effect.void : Effect.fail(s.open))

/** Close the breaker of a pipeline version: runs before now no longer count. */
export const reset = (core: Core, pipeline: { readonly name: string; readonly version: string }) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => core.store.putSetting(settingKey(pipeline), String(now)))
