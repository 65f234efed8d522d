/**
 * The engine: runs pipelines so that a retry, a resume or a replay never pays for a completed step twice.
 * A service (`Context.Tag`) over an `EventStore`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Duration from "effect/Duration"
import type * as Option from "effect/Option"
import type * as Event from "./Event.js"
import { EventStore, type RunFilter, type RunRecord } from "./EventStore.js"
import type * as Failure from "./Failure.js"
import * as internal from "./internal/engine.js"
import type * as Journal from "./Journal.js"
import type * as Pipeline from "./Pipeline.js"
import type { RunContext } from "./RunContext.js"
import type {
  CircuitOpen,
  InvalidInput,
  InvalidKey,
  KeyConflict,
  PastPivot,
  PipelineMismatch,
  RunInProgress,
  RunNotFound,
  RunNotResumable
} from "./RunError.js"
import type { DuplicateStepName, StepDiverged } from "./StepDefinition.js"
import type { LeaseLost, SeqConflict, StoreError } from "./StoreError.js"

/** How one step call went in a replay. */
export interface ReplayEntry {
  readonly stepId: string
  readonly name: string
  /** `served`: from the log; `reordered`: served from the completion of another occurrence of the same
   * step with the same input (concurrent calls that started in another order; `servedFrom` names it);
   * `diverged`: the log has this step with another input; `not-in-journal`: the code calls a step the log
   * does not have (the original run stopped before it, or the code changed). */
  readonly outcome: "served" | "reordered" | "diverged" | "not-in-journal"
  /** For `reordered`: the journal entry that served this call. */
  readonly servedFrom?: string
  readonly inputHash: string
  readonly expectedInputHash?: string
  readonly message?: string
}

export interface EngineOptions {
  /** How long a worker's claim on a run lasts without renewal. Default 30 seconds. */
  readonly leaseDuration?: Duration.DurationInput
  /**
   * This worker's name in leases. Default \`host/pid.start/random\` (\`start\`: the process's start time), which
   * lets another process on this host see at once that the owner died and take its runs over without
   * waiting out the lease. An owner named otherwise is only ever taken over when its lease expires.
   */
  readonly owner?: string
}

export interface RunOptions {
  /** The idempotency key: a second start with the same key never executes a step twice. */
  readonly key?: string
  /** When another worker holds the run: fail with `RunInProgress` (default) or wait for it. */
  readonly ifRunning?: "fail" | "wait"
  readonly parentRunId?: string
  readonly correlationId?: string
  /** This run's spending limit; overrides the pipeline's `budget` field by field. */
  readonly budget?: Pipeline.Budget
}

export interface RollbackOptions {
  /** When another worker holds the run: fail with `RunInProgress` (default) or wait for it. */
  readonly ifRunning?: "fail" | "wait"
}

export interface RecoverOptions {
  /**
   * A run found `running` or `compensating` under a live lease is skipped (default), or waited for
   * (`"wait"`): recover then finishes it if its worker dies, or reports how it ended.
   */
  readonly ifRunning?: "skip" | "wait"
}

export interface ResumeOptions {
  /**
   * When the run is running under a live lease (its owner alive): fail with \`RunInProgress\` (default) or
   * wait until it finishes, fails or its owner dies, then resume it (or return its output).
   */
  readonly ifRunning?: "fail" | "wait"
  /** Re-execute steps whose input differs from the journal's instead of refusing them. */
  readonly reexecuteDiverged?: boolean
  /** The resumed run's spending limit; overrides the pipeline's `budget` field by field. */
  readonly budget?: Pipeline.Budget
}

export interface ReplayReport {
  readonly runId: string
  readonly pipeline: string
  /** Each step call of the replayed code, in call order. */
  readonly steps: ReadonlyArray<ReplayEntry>
  /** Completions in the journal that the replayed code never asked for. */
  readonly unclaimed: ReadonlyArray<string>
  /** `identical`: every step served from its own entry; `reordered`: every step served, some from the
   * completion of another occurrence (concurrent calls that started in another order); `diverged`: the
   * code and the log disagree; `incomplete`: the replay reached the step where the original run stopped. */
  readonly outcome: "identical" | "reordered" | "diverged" | "incomplete"
}

/** Everything a start can fail with, besides the run's own failure. */
export type EngineError =
  | InvalidInput
  | InvalidKey
  | KeyConflict
  | PastPivot
  | CircuitOpen
  | RunInProgress
  | RunNotResumable
  | RunNotFound
  | PipelineMismatch
  | LeaseLost
  | SeqConflict
  | StoreError
  | Event.UnknownEvent

export type RunError = Failure.Failure | StepDiverged | DuplicateStepName | EngineError

export interface RollbackReport {
  readonly runId: string
  /** Steps whose compensation ran to effect in this rollback, in the order they ran. */
  readonly compensated: ReadonlyArray<string>
  /** Steps still to undo (a compensation failed deterministically): the run needs attention. */
  readonly pending: ReadonlyArray<string>
  /** The run's status as it stands after the rollback (read back from the store), not what was asked. */
  readonly status: RunRecord["status"]
  readonly message: string
}

/** A pipeline version's storm breaker: `open` says why when it refuses new runs. */
export interface BreakerState {
  readonly pipeline: string
  readonly version: string
  /** 0 when the pipeline turned its breaker off. */
  readonly threshold: number
  readonly open: CircuitOpen | undefined
}

export interface RecoveredRun {
  readonly runId: string
  readonly pipeline: string
  /**
   * What recovery did: `resumed` (also a run past its pivot, whatever its `onCrash`: it only goes forward),
   * `rolled back`, or `skipped` (no pipeline given for it, or its lease is live).
   */
  readonly action: "resumed" | "rolled back" | "skipped"
  /** `ok` when the action ran to its end, else the first line of why not. */
  readonly outcome: string
  /** The run's status after recovery, read back from the store. */
  readonly status: RunRecord["status"]
}

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
    options?: RunOptions
  ) => Effect.Effect<O, RunError, Exclude<R, RunContext>>
  /** Continue a failed run (any classification) after a fix; completed steps cost nothing. */
  readonly resume: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    options?: ResumeOptions
  ) => Effect.Effect<O, RunError, Exclude<R, RunContext>>
  /** Re-execute the pipeline's code against the log with no side effects and report each step. */
  readonly replay: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string
  ) => Effect.Effect<ReplayReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>>
  /**
   * Undo a failed run: replay it against the journal to rebuild its compensations (no step body runs),
   * then run the pending ones in reverse order. Also finishes a rollback a crash or a failed compensation
   * left unfinished. A run past its pivot (an irreversible step completed) is refused with `PastPivot` and
   * left as it was. The report's `status` is the run's real status afterwards.
   */
  readonly rollback: <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    options?: RollbackOptions
  ) => Effect.Effect<RollbackReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>>
  /**
   * Finish the runs whose worker died: resume them, or roll back per the pipeline's `onCrash` — a run past
   * its pivot is resumed whatever `onCrash` says. Each result states the run's real status afterwards.
   */
  readonly recover: <P extends Pipeline.Any>(
    pipelines: ReadonlyArray<P>,
    options?: RecoverOptions
  ) => Effect.Effect<ReadonlyArray<RecoveredRun>, StoreError, Pipeline.Requirements<P>>
  /** Close the storm breaker of the pipeline's current version. */
  readonly resetBreaker: (pipeline: Pipeline.Any) => Effect.Effect<void, StoreError>
  /** The storm breaker of the pipeline's current version: open (and why) or closed. */
  readonly breakerState: (pipeline: Pipeline.Any) => Effect.Effect<BreakerState, StoreError>
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
export const layer = (options?: EngineOptions): Layer.Layer<Engine, never, EventStore> =>
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
  options?: RunOptions
): Effect.Effect<O, RunError, Engine | Exclude<R, RunContext>> =>
  Effect.flatMap(Engine, (engine) => engine.run(pipeline, input, options))

export const resume = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options?: ResumeOptions
): Effect.Effect<O, RunError, Engine | Exclude<R, RunContext>> =>
  Effect.flatMap(Engine, (engine) => engine.resume(pipeline, runId, options))

export const replay = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string
): Effect.Effect<ReplayReport, EngineError | Failure.Deterministic, Engine | Exclude<R, RunContext>> =>
  Effect.flatMap(Engine, (engine) => engine.replay(pipeline, runId))

export const rollback = <I, O, E, R>(
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  runId: string,
  options?: RollbackOptions
): Effect.Effect<
  RollbackReport,
  EngineError | PastPivot | Failure.Deterministic,
  Engine | Exclude<R, RunContext>
> => Effect.flatMap(Engine, (engine) => engine.rollback(pipeline, runId, options))

export const recover = <P extends Pipeline.Any>(
  pipelines: ReadonlyArray<P>,
  options?: RecoverOptions
): Effect.Effect<ReadonlyArray<RecoveredRun>, StoreError, Engine | Pipeline.Requirements<P>> =>
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

export const breakerState = (pipeline: Pipeline.Any): Effect.Effect<BreakerState, StoreError, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.breakerState(pipeline))

export const state = (runId: string): Effect.Effect<Journal.RunState, StoreError | Event.UnknownEvent, Engine> =>
  Effect.flatMap(Engine, (engine) => engine.state(runId))
