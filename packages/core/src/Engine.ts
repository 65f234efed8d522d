/**
 * The engine: runs pipelines so that a retry, a resume or a replay never pays for a completed step twice.
 * A service (`Context.Tag`) over an `EventStore`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Event from "./Event.js"
import { EventStore, type RunFilter, type RunRecord } from "./EventStore.js"
import type * as Failure from "./Failure.js"
import * as internal from "./internal/engine.js"
import type * as Journal from "./Journal.js"
import type * as Pipeline from "./Pipeline.js"
import type { RunContext } from "./RunContext.js"
import type { PastPivot, RunNotFound } from "./RunError.js"
import type { StoreError } from "./StoreError.js"

export type {
  BreakerState,
  EngineError,
  EngineOptions,
  RecoveredRun,
  RecoverOptions,
  ReplayReport,
  ResumeOptions,
  RollbackOptions,
  RollbackReport,
  RunError,
  RunOptions
} from "./internal/engine.js"
export type { ReplayEntry } from "./internal/runner.js"

export interface EngineService {
  /** This worker's name in leases. */
  readonly owner: string
  /**
   * Run a pipeline, idempotently by key (default: derived from the input). A completed run returns its
   * stored output; a deterministic failure its stored failure, executing nothing; a transient failure
   * or a dead worker's run is resumed with completed steps served from the log.
   */
  readonly run: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    input: I,
    options?: internal.RunOptions
  ) => Effect.Effect<O, internal.RunError, Exclude<R, RunContext>>
  /** Continue a failed run (any classification) after a fix; completed steps cost nothing. */
  readonly resume: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    options?: internal.ResumeOptions
  ) => Effect.Effect<O, internal.RunError, Exclude<R, RunContext>>
  /** Re-execute the pipeline's code against the log with no side effects and report each step. */
  readonly replay: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string
  ) => Effect.Effect<internal.ReplayReport, internal.EngineError | Failure.Deterministic, Exclude<R, RunContext>>
  /**
   * Undo a failed run: replay it against the journal to rebuild its compensations (no step body runs),
   * then run the pending ones in reverse order. Also finishes a rollback a crash or a failed compensation
   * left unfinished. A run past its pivot (an irreversible step completed) is refused with `PastPivot` and
   * left as it was. The report's `status` is the run's real status afterwards.
   */
  readonly rollback: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    options?: internal.RollbackOptions
  ) => Effect.Effect<internal.RollbackReport, internal.EngineError | Failure.Deterministic, Exclude<R, RunContext>>
  /**
   * Finish the runs whose worker died: resume them, or roll back per the pipeline's `onCrash` — a run past
   * its pivot is resumed whatever `onCrash` says. Each result states the run's real status afterwards.
   */
  readonly recover: <P extends Pipeline.Any>(
    pipelines: ReadonlyArray<P>,
    options?: internal.RecoverOptions
  ) => Effect.Effect<ReadonlyArray<internal.RecoveredRun>, StoreError, Pipeline.Requirements<P>>
  /** Close the storm breaker of the pipeline's current version. */
  readonly resetBreaker: (pipeline: Pipeline.Any) => Effect.Effect<void, StoreError>
  /** The storm breaker of the pipeline's current version: open (and why) or closed. */
  readonly breakerState: (pipeline: Pipeline.Any) => Effect.Effect<internal.BreakerState, StoreError>
  /** A run by id or unique id prefix. */
  readonly getRun: (runIdOrPrefix: string) => Effect.Effect<RunRecord, RunNotFound | StoreError>
  /** The run of a pipeline with this key (the one `run` started or would answer from), if any. */
  readonly lookup: (pipeline: Pipeline.Any, key: string) => Effect.Effect<Option.Option<RunRecord>, StoreError>
  readonly runs: (filter: RunFilter) => Effect.Effect<ReadonlyArray<RunRecord>, StoreError>
  /** A run's events in log order, each with its `seq`. */
  readonly events: (runId: string) => Effect.Effect<ReadonlyArray<Event.Sequenced>, StoreError | Event.UnknownEvent>
  /** A run's journal folded: steps, attempts, outcome. */
  readonly state: (runId: string) => Effect.Effect<Journal.RunState, StoreError | Event.UnknownEvent>
}

export class Engine extends Context.Tag("@ledgerflow/core/Engine")<Engine, EngineService>() {}

/**
 * The engine over whatever `EventStore` is provided. Its lease keeper (one fiber renewing the leases of
 * every run it executes) lives as long as the layer.
 */
export const layer = (options?: internal.EngineOptions): Layer.Layer<Engine, never, EventStore> =>
  Layer.scoped(
    Engine,
    Effect.flatMap(EventStore, (store) => {
      const engine = internal.make(store, options)
      return Effect.as(engine.keepLeases, engine.service)
    })
  )

export const run = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  input: I,
  options?: internal.RunOptions
): Effect.Effect<O, internal.RunError, Engine | Exclude<R, RunContext>> =>
  Effect.flatMap(Engine, (engine) => engine.run(pipeline, input, options))

export const resume = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options?: internal.ResumeOptions
): Effect.Effect<O, internal.RunError, Engine | Exclude<R, RunContext>> =>
  Effect.flatMap(Engine, (engine) => engine.resume(pipeline, runId, options))

export const replay = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string
): Effect.Effect<internal.ReplayReport, internal.EngineError | Failure.Deterministic, Engine | Exclude<R, RunContext>> =>
  Effect.flatMap(Engine, (engine) => engine.replay(pipeline, runId))

export const rollback = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options?: internal.RollbackOptions
): Effect.Effect<
  internal.RollbackReport,
  internal.EngineError | PastPivot | Failure.Deterministic,
  Engine | Exclude<R, RunContext>
> => Effect.flatMap(Engine, (engine) => engine.rollback(pipeline, runId, options))

export const recover = <P extends Pipeline.Any>(
  pipelines: ReadonlyArray<P>,
  options?: internal.RecoverOptions
): Effect.Effect<ReadonlyArray<internal.RecoveredRun>, StoreError, Engine | Pipeline.Requirements<P>> =>
  Effect.flatMap(Engine, (engine) => engine.recover(pipelines, options))

/** The run of `pipeline` with this key, if any: how code that got a failure finds the run to resume. */
export const lookup = (pipeline: Pipeline.Any, key: string): Effect.Effect<Option.Option<RunRecord>, StoreError, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.lookup(pipeline, key))

export const resetBreaker = (pipeline: Pipeline.Any): Effect.Effect<void, StoreError, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.resetBreaker(pipeline))

export const getRun = (runIdOrPrefix: string): Effect.Effect<RunRecord, RunNotFound | StoreError, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.getRun(runIdOrPrefix))

export const runs = (filter: RunFilter = {}): Effect.Effect<ReadonlyArray<RunRecord>, StoreError, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.runs(filter))

export const events = (
  runId: string
): Effect.Effect<ReadonlyArray<Event.Sequenced>, StoreError | Event.UnknownEvent, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.events(runId))

export const breakerState = (pipeline: Pipeline.Any): Effect.Effect<internal.BreakerState, StoreError, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.breakerState(pipeline))

export const state = (runId: string): Effect.Effect<Journal.RunState, StoreError | Event.UnknownEvent, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.state(runId))
