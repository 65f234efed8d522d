/**
 * The engine's implementation: idempotent starts by key, takeovers under fenced leases, execution of a
 * pipeline against its journal, and replay without side effects.
 */
import { randomUUID } from "node:crypto"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Scope from "effect/Scope"
import * as Event from "../Event.js"
import type { EventStoreService, RunPatch, RunRecord } from "../EventStore.js"
import * as Failure from "../Failure.js"
import * as Journal from "../Journal.js"
import type * as Pipeline from "../Pipeline.js"
import { type PriceTable, Pricing } from "../Pricing.js"
import { RunContext } from "../RunContext.js"
import {
  CircuitOpen,
  InvalidInput,
  type InvalidKey,
  KeyConflict,
  PastPivot,
  PipelineMismatch,
  RunInProgress,
  RunNotFound,
  RunNotResumable,
  validateKey
} from "../RunError.js"
import { DuplicateStepName, StepDiverged } from "../Step.js"
import { LeaseLost, type SeqConflict, type StoreError } from "../StoreError.js"
import { redeliver } from "./delivery.js"
import { hashJson, toJson } from "./hash.js"
import * as JournalSafe from "./journalSafe.js"
import { Leases } from "./leases.js"
import { leaseLapsed, makeOwner, watchable } from "./owner.js"
import { journalLoss, type ReplayEntry, StepRunner } from "./runner.js"

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

export const make = (store: EventStoreService, options: EngineOptions = {}) => {
  const leaseMs = Duration.toMillis(options.leaseDuration ?? Duration.seconds(30))
  const owner = options.owner ?? makeOwner()

  // 48 random bits: the first 12 hex digits of a v4 UUID (Node hands those out of a cached entropy pool,
  // ~3× cheaper than \`randomBytes\` per id).
  const newRunId = (now: number) => {
    const uuid = randomUUID()
    return `run_${now.toString(36).padStart(9, "0")}${uuid.slice(0, 8)}${uuid.slice(9, 13)}`
  }

  // Completions are folded from their step columns, without their bodies: an execution that serves them
  // reads those once, when it starts (`bodiesOf`); inspecting a run reads none.
  const readState = (runId: string) => Effect.flatMap(store.readFold(runId), Journal.foldStored)

  /** The bodies an execution serves its completions from: one read, only when the fold went without them. */
  const noBodies: ReadonlyMap<number, string> = new Map()
  const bodiesOf = (runId: string, state: Journal.RunState) =>
    Journal.needsBodies(state) ? store.readBodies(runId) : Effect.succeed(noBodies)

  const decodeStored = <A>(
    decode: (u: unknown) => Either.Either<A, ParseResult.ParseError>,
    value: unknown,
    what: string,
    runId: string
  ): Effect.Effect<A, Failure.Deterministic> => {
    const decoded = decode(value)
    return Either.isRight(decoded) ? Effect.succeed(decoded.right) : Effect.fail(Failure.inRun(
      Failure.deterministic(
        `the journaled ${what} of run ${runId} no longer decodes with the pipeline's Schema (${
          ParseResult.TreeFormatter.formatErrorSync(decoded.left)
        }); bump the pipeline version or migrate the Schema`,
        { rule: "schema" }
      ),
      runId
    ))
  }

  /** The outcome of a finished run, as stored: its output, or its failure. */
  const stored = <I, O, E, R>(pipeline: Pipeline.Pipeline<I, O, E, R>, run: RunRecord, known?: Journal.RunState) =>
    Effect.flatMap(known === undefined ? readState(run.runId) : Effect.succeed(known), (state): Effect.Effect<O, RunError> => {
      if (state.status === "completed") {
        return decodeStored(pipeline.codec.decodeOutput, state.output, "output", run.runId)
      }
      if (state.failure !== undefined) {
        return Effect.fail(Failure.inRun(state.failure.failure, run.runId, state.failure.stepId))
      }
      return Effect.fail(notResumable(run))
    })

  const notResumable = (run: RunRecord) =>
    new RunNotResumable({
      runId: run.runId,
      status: run.status,
      message: `run ${run.runId} is ${run.status.replace("_", " ")}; it cannot be started again by key: see what happened with \`ledgerflow show ${run.runId}\`, then \`ledgerflow resume\` or \`ledgerflow rollback\` it`
    })

  const keyConflict = (pipeline: { readonly name: string }, run: RunRecord, storedInputHash: string, inputHash: string) =>
    new KeyConflict({
      pipeline: pipeline.name,
      key: run.key,
      runId: run.runId,
      storedInputHash,
      inputHash,
      message:
        `the key ${JSON.stringify(run.key)} of pipeline ${pipeline.name} belongs to run ${run.runId}, started with another input (hash ${storedInputHash}, this start's ${inputHash}); nothing was executed. Use a new key for this input, or start the run's own input again to get its outcome`
    })

  const inProgress = (run: RunRecord) =>
    new RunInProgress({
      runId: run.runId,
      owner: run.owner,
      leaseExpiresAt: run.leaseExpiresAt,
      message: `run ${run.runId} (key ${run.key}) is running on ${run.owner} until at least ${
        new Date(run.leaseExpiresAt).toISOString()
      }; wait for it (ifRunning: "wait") or start it again after its lease expires`
    })

  /** The leases this engine holds, renewed together by one keeper fiber. */
  const leases = new Leases(store, leaseMs)

  /** Give the lease up at once (the caller interrupted us): another start may take over immediately. */
  const releaseLease = (runId: string, token: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.renew({ runId, token, now, leaseExpiresAt: now }))
      .pipe(Effect.ignore)

  /** Fail with what stopped the execution from inside (a stale lease, the store, a damaged log), if anything. */
  const stopped = (runner: StepRunner): Effect.Effect<void, LeaseLost | SeqConflict | StoreError | Event.UnknownEvent> => {
    const abort = runner.abort
    return abort === undefined || abort._tag === "ReplayStopped" ? Effect.void : Effect.fail(abort)
  }

  const newRunner = (
    run: RunRecord,
    state: Journal.RunState,
    mode: "execute" | "replay" | "rollback",
    reexecuteDiverged: boolean,
    crashed = false,
    budget?: { readonly limit: Pipeline.Budget; readonly pricing: PriceTable | undefined }
  ) =>
    Effect.map(Effect.all([Scope.make(), bodiesOf(run.runId, state), Effect.clock]), ([scope, bodies, clock]) =>
      new StepRunner({
        runId: run.runId,
        mode,
        reexecuteDiverged,
        state,
        store,
        token: run.leaseToken,
        scope,
        leaseExpiresAt: run.leaseExpiresAt,
        clock,
        bodies,
        alone: (runner) => leases.alone(runner),
        crashed,
        ...(budget !== undefined ? { budget: budget.limit, pricing: budget.pricing } : {})
      }))

  const contextOf = (pipeline: { readonly name: string }, run: RunRecord, runner: StepRunner) => ({
    runId: run.runId,
    key: run.key,
    pipeline: pipeline.name,
    mode: runner.config.mode,
    runner
  })

  /** Run the pipeline's code under the run's context (and lease, unless replaying). */
  const runProgram = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    input: I,
    run: RunRecord,
    runner: StepRunner
  ): Effect.Effect<Exit.Exit<O, E | LeaseLost | StoreError>, never, Exclude<R, RunContext>> => {
    const program = Effect.provideService(runner.enter(pipeline.run(input)), RunContext, contextOf(pipeline, run, runner))
    return runner.config.mode === "replay" ? Effect.exit(program) : leases.hold(runner, program)
  }

  /** Execute the pipeline under the run's lease, against its journal; journal the outcome. */
  const execute = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    input: I,
    run: RunRecord,
    state: Journal.RunState,
    reexecuteDiverged: boolean,
    runBudget?: Pipeline.Budget
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      // A budget (the pipeline's, overridden by the run's) is priced with the `Pricing` service when one is
      // provided, else the default table; looked up once per execution, not per step.
      const limit = pipeline.budget === undefined && runBudget === undefined
        ? undefined
        : { ...pipeline.budget, ...runBudget }
      const budget = limit === undefined
        ? undefined
        : { limit, pricing: Option.getOrUndefined(yield* Effect.serviceOption(Pricing)) }
      const runner = yield* newRunner(run, state, "execute", reexecuteDiverged, false, budget)
      if (pipeline.preflight !== undefined) {
        const checked = yield* Effect.exit(
          Effect.provideService(pipeline.preflight, RunContext, contextOf(pipeline, run, runner))
        )
        if (Exit.isFailure(checked)) {
          if (Cause.isInterruptedOnly(checked.cause)) return yield* Effect.interrupt
          const why = classifyPreflight(checked.cause)
          const failure = Failure.deterministic(
            `the preflight of pipeline ${pipeline.name} failed, before any step ran: ${why.reason}`,
            { rule: "preflight", ...(why.cause !== undefined ? { cause: why.cause } : {}) }
          )
          return yield* fail(runner, failure, "preflight", Exit.fail(failure))
        }
      }
      const exit = yield* runProgram(pipeline, input, run, runner)
      if (runner.abort !== undefined) {
        // Stopped from inside (stale lease, store failure, damaged log): another worker may own the run, or
        // the log needs a look; undo nothing.
        yield* Scope.close(runner.config.scope, Exit.interrupt(FiberId.none))
        return yield* stopped(runner).pipe(Effect.zipRight(Effect.interrupt))
      }
      if (Exit.isSuccess(exit)) {
        const encoded = pipeline.codec.encodeOutput(exit.value)
        const lost = Either.isRight(encoded) ? JournalSafe.check(encoded.right, pipeline.codec.decodeOutput) : undefined
        if (Either.isRight(encoded) && lost === undefined) {
          const at = yield* Clock.currentTimeMillis
          // Not synced on its own: if it is lost, the next start serves every step from the log and ends the
          // run the same way. The steps it rests on were synced.
          yield* runner.append([Event.make(Event.RunCompleted, { at, output: encoded.right })], { status: "completed" }, false)
          yield* Scope.close(runner.config.scope, Exit.void)
          yield* stopped(runner)
          return exit.value
        }
        const failure = Either.isLeft(encoded)
          ? Failure.deterministic(
            `pipeline ${pipeline.name} returned an output that does not match its Schema: ${
              ParseResult.TreeFormatter.formatErrorSync(encoded.left)
            }`,
            { rule: "schema" }
          )
          : journalLoss(`pipeline ${pipeline.name}`, lost ?? "")
        return yield* fail(runner, failure, undefined, Exit.fail(failure))
      }
      if (Cause.isInterruptedOnly(exit.cause)) {
        yield* Scope.close(runner.config.scope, exit)
        return yield* Effect.interrupt
      }
      const error = Cause.failureOption(exit.cause)
      if (Option.isSome(error) && error.value instanceof LeaseLost) {
        yield* Scope.close(runner.config.scope, Exit.interrupt(FiberId.none))
        return yield* Effect.fail(error.value)
      }
      if (Option.isSome(error) && error.value instanceof StepDiverged) {
        const failure = Failure.deterministic(error.value.message, { rule: "divergence" })
        return yield* fail(runner, failure, error.value.stepId, exit, error.value)
      }
      if (Option.isSome(error) && error.value instanceof DuplicateStepName) {
        const failure = Failure.deterministic(error.value.message, { rule: "duplicate-step-name" })
        return yield* fail(runner, failure, error.value.stepId, exit, error.value)
      }
      const failure = Option.isSome(error) && Failure.isFailure(error.value)
        ? error.value
        : Failure.classify(Option.isSome(error) ? error.value : Cause.squash(exit.cause))
      return yield* fail(runner, failure, runner.failedStep.get(failure), exit)
    }).pipe(
      // Interrupted by its caller: give the lease up so that another start can resume the run at once.
      Effect.onInterrupt(() => releaseLease(run.runId, run.leaseToken))
    )

  /**
   * Journal the run's failure, then close its scope with it: the compensations of completed steps run in
   * reverse order (unless the run is past its pivot), and the run ends rolled back or needing attention.
   */
  const fail = (
    runner: StepRunner,
    failure: Failure.Failure,
    stepId: string | undefined,
    exit: Exit.Exit<unknown, unknown>,
    reported: RunError = failure
  ): Effect.Effect<never, RunError> =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const fingerprint = `${stepId?.replace(/#\d+$|\[.*\]$/, "") ?? ""}|${Failure.fingerprint(failure)}`
      const undo = runner.pivot === undefined && runner.attention === undefined && runner.compensable.length > 0
      yield* runner.append([
        Event.make(Event.RunFailed, { at, failure, fingerprint, ...(stepId !== undefined ? { stepId } : {}) })
      ], {
        status: undo ? "compensating" : "failed",
        failure: {
          failureClass: Failure.classification(failure),
          failureFingerprint: fingerprint,
          failureReason: failure.reason
        }
      })
      yield* Scope.close(runner.config.scope, exit)
      yield* settle(runner, undo, failure)
      yield* stopped(runner)
      // Every failure a run returns names its run, and its step where a step failed.
      return yield* Effect.fail(Failure.isFailure(reported) ? Failure.inRun(reported, runner.config.runId, stepId) : reported)
    })

  /** After the scope closed: journal where the undo left the run. */
  const settle = (runner: StepRunner, undo: boolean, failure: Failure.Failure | undefined) =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      if (runner.attention !== undefined) {
        yield* runner.append([
          Event.make(Event.RunNeedsAttention, { at, reason: runner.attention.reason, pending: runner.attention.pending })
        ], { status: "needs_attention" })
      } else if (undo) {
        yield* runner.append([Event.make(Event.RunRolledBack, { at })], { status: "rolled_back" })
      } else if (runner.pivot !== undefined && failure !== undefined && Failure.isDeterministic(failure)) {
        yield* runner.append([
          Event.make(Event.RunNeedsAttention, {
            at,
            reason:
              `the run is past its pivot (irreversible step ${runner.pivot} completed), so it cannot be rolled back, and it failed deterministically: fix the cause and resume it`,
            pending: []
          })
        ], { status: "needs_attention" })
      }
    })

  /** Why a preflight failed, as a reason and the raw error summarised. */
  const classifyPreflight = (cause: Cause.Cause<unknown>) => {
    const error = Cause.failureOption(cause)
    const raw = Option.isSome(error) ? error.value : Cause.squash(cause)
    const failure = Failure.isFailure(raw) ? raw : Failure.classify(raw)
    return { reason: failure.reason, cause: failure.cause }
  }

  /** Take a run over (CAS on its fencing token), then execute it from its journal. */
  const takeOver = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    run: RunRecord,
    reason: string,
    requireExpired: boolean,
    reexecuteDiverged: boolean,
    budget?: Pipeline.Budget
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const acquired = yield* lease(run, reason, requireExpired, { status: "running", failure: null })
      const state = yield* readState(run.runId)
      const input = yield* decodeStored(pipeline.codec.decodeInput, state.started?.input, "input", run.runId)
      return yield* execute(pipeline, input, acquired, state, reexecuteDiverged, budget)
    })

  /** Take an existing run's lease (a CAS on its fencing token), journaling why. */
  const lease = (run: RunRecord, reason: string, requireExpired: boolean, patch: RunPatch) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const expiresAt = now + leaseMs
      const acquired = yield* store.acquire({
        runId: run.runId,
        expectedToken: run.leaseToken,
        owner,
        now,
        leaseExpiresAt: expiresAt,
        requireExpired,
        events: (token) => [
          Event.encode(Event.make(Event.RunResumed, { at: now, reason })),
          Event.encode(Event.make(Event.LeaseTaken, { at: now, owner, token, expiresAt }))
        ],
        patch
      }).pipe(Effect.catchTag("LeaseLost", () =>
        // Another worker won the takeover race: it owns the run now.
        Effect.flatMap(store.getRun(run.runId), (latest) => Effect.fail(inProgress(Option.getOrElse(latest, () => run))))
      ))
      return acquired
    })

  const checkPipeline = (pipeline: { readonly name: string }, run: RunRecord) =>
    run.pipeline === pipeline.name ? Effect.void : Effect.fail(
      new PipelineMismatch({
        runId: run.runId,
        expected: pipeline.name,
        actual: run.pipeline,
        message: `run ${run.runId} belongs to pipeline "${run.pipeline}", not "${pipeline.name}"`
      })
    )

  const run = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    input: I,
    runOptions: RunOptions = {}
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const encoded = pipeline.codec.encodeInput(input)
      if (Either.isLeft(encoded)) {
        return yield* Effect.fail(
          new InvalidInput({
            pipeline: pipeline.name,
            message: `the input of pipeline ${pipeline.name} does not match its Schema:\n${
              ParseResult.TreeFormatter.formatErrorSync(encoded.left)
            }`
          })
        )
      }
      const inputHash = hashJson(toJson(encoded.right))
      const key = runOptions.key ?? inputHash
      const invalidKey = validateKey(key)
      if (invalidKey !== undefined) return yield* Effect.fail(invalidKey)
      // This start is one delivery of its key: counted once, however long it waits for a running run.
      let delivered = false
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const found = yield* store.findByKey(pipeline.name, key)
        let existing: RunRecord
        if (Option.isSome(found)) {
          // A key that has a run (a redelivery) is answered from it: one read, and one small write counting it.
          existing = delivered ? found.value : yield* redeliver(store, found.value, now)
          delivered = true
        } else {
          // Only a run that does not exist yet is refused by the breaker: an existing key still returns its outcome.
          yield* checkBreaker(pipeline)
          const runId = newRunId(now)
          const expiresAt = now + leaseMs
          const claim = yield* store.claim({
            runId,
            pipeline: pipeline.name,
            version: pipeline.version,
            key,
            owner,
            now,
            leaseExpiresAt: expiresAt,
            parentRunId: runOptions.parentRunId,
            correlationId: runOptions.correlationId,
            alone: leases.alone(),
            events: [
              Event.encode(
                Event.make(Event.RunStarted, {
                  at: now,
                  pipeline: pipeline.name,
                  version: pipeline.version,
                  key,
                  input: encoded.right,
                  inputHash,
                  ...(runOptions.parentRunId !== undefined ? { parentRunId: runOptions.parentRunId } : {}),
                  ...(runOptions.correlationId !== undefined ? { correlationId: runOptions.correlationId } : {})
                })
              ),
              Event.encode(Event.make(Event.LeaseTaken, { at: now, owner, token: 1, expiresAt }))
            ]
          })
          if (claim._tag === "Created") {
            return yield* execute(pipeline, input, claim.run, Journal.empty, false, runOptions.budget)
          }
          // Another worker created it since the lookup; the claim counted this delivery.
          existing = claim.run
          delivered = true
        }
        // A chosen key is bound to its first input (a derived key is the input's hash: it cannot differ).
        const known = runOptions.key === undefined ? undefined : yield* readState(existing.runId)
        const storedHash = known?.started?.inputHash
        if (storedHash !== undefined && storedHash !== inputHash) {
          return yield* Effect.fail(keyConflict(pipeline, existing, storedHash, inputHash))
        }
        switch (existing.status) {
          case "completed":
            return yield* stored(pipeline, existing, known)
          case "failed":
          case "rolled_back":
            // A deterministic failure is returned as stored: redelivering the same work cannot fix it.
            if (existing.failureClass === "deterministic") return yield* stored(pipeline, existing, known)
            return yield* takeOver(
              pipeline,
              existing,
              existing.status === "failed"
                ? "started again after its retries were exhausted on a transient failure"
                : "started again after a rollback: undone steps run again, kept outputs are served",
              false,
              false,
              runOptions.budget
            )
          case "compensating":
            if (leaseLapsed(existing, now) === undefined) return yield* Effect.fail(inProgress(existing))
            // Its worker died while undoing: finish the rollback, then decide as for a rolled-back run.
            yield* rollback(pipeline, existing.runId)
            continue
          case "running": {
            const lapsed = leaseLapsed(existing, now)
            if (lapsed !== undefined) {
              return yield* takeOver(
                pipeline,
                existing,
                `${lapsed.why}; taken over by ${owner}`,
                lapsed.timedOut,
                false,
                runOptions.budget
              )
            }
            if (runOptions.ifRunning !== "wait") return yield* Effect.fail(inProgress(existing))
            yield* waitForLease(existing, now)
            continue
          }
          default:
            return yield* Effect.fail(notResumable(existing))
        }
      }
    })

  const breakerKey = (pipeline: { readonly name: string; readonly version: string }) =>
    `breaker-reset:${pipeline.name}@${pipeline.version}`

  /**
   * The storm breaker's state: open when the latest `threshold` runs of this pipeline version (since the
   * last reset) all failed deterministically with one fingerprint. Read from the runs' projection, so every
   * process sees the same breaker.
   */
  const breakerState = (pipeline: Pipeline.Any): Effect.Effect<BreakerState, StoreError> =>
    Effect.gen(function*() {
      const threshold = pipeline.breakerThreshold
      const closed: BreakerState = { pipeline: pipeline.name, version: pipeline.version, threshold, open: undefined }
      if (threshold === 0) return closed
      const reset = yield* store.getSetting(breakerKey(pipeline))
      const since = Option.match(reset, { onNone: () => undefined, onSome: (at) => Number(at) + 1 })
      const latest = yield* store.listRuns({ pipeline: pipeline.name, version: pipeline.version, since, limit: threshold })
      const fingerprint = latest[0]?.failureFingerprint
      const tripped = latest.length === threshold && fingerprint !== undefined && latest.every((r) =>
        r.failureClass === "deterministic" && r.failureFingerprint === fingerprint &&
        r.status !== "running" && r.status !== "completed"
      )
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

  /** Refuse a new run while the breaker is open: before it spends anything. */
  const checkBreaker = (pipeline: Pipeline.Any): Effect.Effect<void, CircuitOpen | StoreError> =>
    Effect.flatMap(breakerState(pipeline), (state) => state.open === undefined ? Effect.void : Effect.fail(state.open))

  /** Close the breaker of a pipeline version: runs before now no longer count. */
  const resetBreaker = (pipeline: { readonly name: string; readonly version: string }) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.putSetting(breakerKey(pipeline), String(now)))

  /**
   * Wait for a live lease: until the store says the run may have changed (its worker finished, failed or
   * gave it up), or until the lease should expire (at least 50 ms). An owner on this host is looked at
   * again every second: its process dying is written nowhere, so no store can wake us for it.
   */
  const waitForLease = (run: RunRecord, now: number) =>
    store.awaitRunChange(
      run.runId,
      Duration.millis(Math.max(50, Math.min(watchable(run.owner) ? 1000 : Infinity, run.leaseExpiresAt - now)))
    )

  const pastPivot = (run: RunRecord, stepId: string, status: RunRecord["status"] = run.status) =>
    new PastPivot({
      runId: run.runId,
      stepId,
      status,
      message:
        `run ${run.runId} is past its pivot: irreversible step ${stepId} completed, so nothing before it may be undone and the run can only go forward; resume it after fixing the cause (it was left ${
          status.replace("_", " ")
        })`
    })

  /**
   * What undoing a run came to: rolled back (as far as it went), or refused because the run is past its
   * pivot — found in the journal before anything was taken (`leased` undefined), or learnt while
   * rebuilding the scope, when the reconcile of an in-doubt irreversible step said it happened (`leased`:
   * the run's record under this engine's lease, nothing undone).
   */
  type Undo =
    | { readonly _tag: "RolledBack"; readonly report: RollbackReport }
    | { readonly _tag: "PastPivot"; readonly error: PastPivot; readonly leased: RunRecord | undefined }

  /**
   * Undo a failed run: rebuild its scope by replaying the pipeline against the journal (no body runs),
   * then close it as failed so the pending compensations run in reverse order. A run past its pivot is
   * not undone: the caller resumes it (recovery) or refuses (an explicit rollback).
   */
  const undo = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    options: RollbackOptions & { readonly onPastPivot: "refuse" | "resume" }
  ): Effect.Effect<Undo, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      let existing = yield* getRun(runId)
      yield* checkPipeline(pipeline, existing)
      // Why the holder's lease no longer holds (timed out, or its process on this host is gone), if held.
      let lapsed: ReturnType<typeof leaseLapsed>
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
        yield* waitForLease(existing, now)
        existing = yield* getRun(existing.runId)
      }
      // Past its pivot in the journal: refused before anything is taken or written.
      const before = yield* readState(existing.runId)
      if (before.pivot !== undefined) {
        return { _tag: "PastPivot", error: pastPivot(existing, before.pivot), leased: undefined } satisfies Undo
      }
      const acquired = yield* lease(existing, "rollback", lapsed?.timedOut ?? false, { status: "compensating" })
      const state = yield* readState(existing.runId)
      const input = yield* decodeStored(pipeline.codec.decodeInput, state.started?.input, "input", existing.runId)
      const runner = yield* newRunner(acquired, state, "rollback", false, state.status === "running")
      yield* runProgram(pipeline, input, acquired, runner)
      if (runner.abort !== undefined && runner.abort._tag !== "ReplayStopped") {
        yield* Scope.close(runner.config.scope, Exit.interrupt(FiberId.none))
        return yield* Effect.fail(runner.abort)
      }
      if (runner.pivot !== undefined && runner.attention === undefined) {
        // The reconcile of an in-doubt irreversible step said it happened: past the pivot now. Undo nothing.
        yield* Scope.close(runner.config.scope, Exit.interrupt(FiberId.none))
        const error = pastPivot(acquired, runner.pivot, options.onPastPivot === "refuse" ? "needs_attention" : "running")
        if (options.onPastPivot === "refuse") {
          const at = yield* Clock.currentTimeMillis
          yield* runner.append([Event.make(Event.RunNeedsAttention, { at, reason: error.message, pending: [] })], {
            status: "needs_attention"
          })
          yield* stopped(runner)
        }
        const leased = yield* getRun(acquired.runId)
        return { _tag: "PastPivot", error, leased } satisfies Undo
      }
      // What the run failed with; a crashed run (no failure in its log) is undone as it stands, no failure invented.
      const failure = state.failure?.failure
      yield* Scope.close(runner.config.scope, Exit.fail(failure ?? "rollback"))
      const undone = runner.attention === undefined
      yield* settle(runner, undone, failure)
      yield* stopped(runner)
      const pending = runner.attention?.pending ?? []
      const after = yield* getRun(existing.runId)
      const report = {
        runId: existing.runId,
        compensated: runner.compensable.filter((id) => runner.compensated.has(id)).reverse(),
        pending,
        status: after.status,
        message: runner.attention?.reason ?? `rolled back: ${runner.compensated.size} compensation(s) ran`
      } satisfies RollbackReport
      return { _tag: "RolledBack", report } satisfies Undo
    })

  /** An explicit rollback: a run past its pivot is refused (`PastPivot`), left as it was. */
  const rollback = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    options: RollbackOptions = {}
  ): Effect.Effect<RollbackReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
    Effect.flatMap(
      undo(pipeline, runId, { ...options, onPastPivot: "refuse" }),
      (done) => done._tag === "RolledBack" ? Effect.succeed(done.report) : Effect.fail(done.error)
    )

  /**
   * Find runs whose worker died (lease expired while running or compensating) and finish them: resume,
   * or roll back when the pipeline says `onCrash: "rollback"` or the run was already undoing — except a
   * run past its pivot, which only goes forward: it is resumed. Each result states the run's real status.
   */
  const recover = <P extends Pipeline.Any>(
    pipelines: ReadonlyArray<P>,
    options: RecoverOptions = {}
  ): Effect.Effect<ReadonlyArray<RecoveredRun>, StoreError, Pipeline.Requirements<P>> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const found = [
        ...(yield* store.listRuns({ status: "running" })),
        ...(yield* store.listRuns({ status: "compensating" }))
      ]
      const stale = options.ifRunning === "wait" ? found : found.filter((r) => leaseLapsed(r, now) !== undefined)
      const byName = new Map(pipelines.map((p) => [p.name, p]))
      const results: Array<RecoveredRun> = []
      const statusOf = (runId: string, fallback: RunRecord["status"]) =>
        Effect.map(store.getRun(runId), Option.match({ onNone: () => fallback, onSome: (r) => r.status }))
      for (const listed of stale) {
        const pipeline = byName.get(listed.pipeline)
        if (pipeline === undefined) {
          results.push({
            runId: listed.runId,
            pipeline: listed.pipeline,
            action: "skipped",
            outcome: "no such pipeline given",
            status: listed.status
          })
          continue
        }
        // Waiting for a live lease: until its worker finishes the run, or dies (its process gone, or its lease
        // run out).
        let r = listed
        let lapsed = leaseLapsed(r, yield* Clock.currentTimeMillis)
        while ((r.status === "running" || r.status === "compensating") && lapsed === undefined) {
          yield* waitForLease(r, yield* Clock.currentTimeMillis)
          r = Option.getOrElse(yield* store.getRun(r.runId), () => r)
          lapsed = leaseLapsed(r, yield* Clock.currentTimeMillis)
        }
        if ((r.status !== "running" && r.status !== "compensating") || lapsed === undefined) {
          results.push({ runId: r.runId, pipeline: r.pipeline, action: "skipped", outcome: `finished by ${r.owner}`, status: r.status })
          continue
        }
        const back = r.status === "compensating" || pipeline.onCrash === "rollback"
        const resume = (run: RunRecord, requireExpired: boolean, why: string) =>
          takeOver(pipeline, run, `${why}; recovered by ${owner}`, requireExpired, false)
        const exit = yield* Effect.exit(
          back
            ? Effect.flatMap(undo(pipeline, r.runId, { onPastPivot: "resume" }), (done) =>
              done._tag === "RolledBack"
                ? Effect.succeed("rolled back" as const)
                : Effect.as(
                  done.leased === undefined
                    ? resume(r, lapsed.timedOut, `${lapsed.why}; past its pivot (${done.error.stepId}), so resumed, not rolled back`)
                    : resume(done.leased, false, `past its pivot (${done.error.stepId} reconciled as done), so resumed, not rolled back`),
                  "resumed" as const
                ))
            : Effect.as(resume(r, lapsed.timedOut, lapsed.why), "resumed" as const)
        )
        const action = Exit.isSuccess(exit) ? exit.value : back ? "rolled back" : "resumed"
        results.push({
          runId: r.runId,
          pipeline: r.pipeline,
          action,
          outcome: Exit.isSuccess(exit) ? "ok" : Cause.pretty(exit.cause).split("\n")[0] ?? "failed",
          status: yield* statusOf(r.runId, r.status)
        })
      }
      return results
      // The loop runs pipelines of type `P`: what they need is `Requirements<P>` (erased to any inside).
    }) as Effect.Effect<ReadonlyArray<RecoveredRun>, StoreError, Pipeline.Requirements<P>>

  const getRun = (runIdOrPrefix: string): Effect.Effect<RunRecord, RunNotFound | StoreError> =>
    Effect.flatMap(store.getRun(runIdOrPrefix), (exact) => {
      if (Option.isSome(exact)) return Effect.succeed(exact.value)
      return Effect.flatMap(store.findByPrefix(runIdOrPrefix, 2), (found) => {
        const [first, second] = found
        if (first !== undefined && second === undefined) return Effect.succeed(first)
        return Effect.fail(
          new RunNotFound({
            runId: runIdOrPrefix,
            message: first === undefined
              ? `no run has the id ${runIdOrPrefix}; list runs with \`ledgerflow runs\``
              : `${runIdOrPrefix} is the prefix of several runs; type more of the id`
          })
        )
      })
    })

  const resume = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string,
    resumeOptions: ResumeOptions = {}
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const reexecute = resumeOptions.reexecuteDiverged ?? false
      while (true) {
        const existing = yield* getRun(runId)
        yield* checkPipeline(pipeline, existing)
        const now = yield* Clock.currentTimeMillis
        switch (existing.status) {
          case "completed":
            return yield* stored(pipeline, existing)
          case "failed":
          case "rolled_back":
          case "needs_attention":
            return yield* takeOver(pipeline, existing, "resumed explicitly", false, reexecute, resumeOptions.budget)
          case "running": {
            const lapsed = leaseLapsed(existing, now)
            if (lapsed !== undefined) {
              return yield* takeOver(pipeline, existing, `${lapsed.why}; resumed`, lapsed.timedOut, reexecute, resumeOptions.budget)
            }
            if (resumeOptions.ifRunning !== "wait") return yield* Effect.fail(inProgress(existing))
            // A live owner: wait for it to finish or die, as a start by key waits (\`ifRunning: "wait"\`).
            yield* waitForLease(existing, now)
            continue
          }
          default:
            return yield* Effect.fail(notResumable(existing))
        }
      }
    })

  const replay = <I, O, E, R>(
    pipeline: Pipeline.Pipeline<I, O, E, R>,
    runId: string
  ): Effect.Effect<ReplayReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const existing = yield* getRun(runId)
      yield* checkPipeline(pipeline, existing)
      const state = yield* readState(existing.runId)
      const input = yield* decodeStored(pipeline.codec.decodeInput, state.started?.input, "input", existing.runId)
      const runner = yield* newRunner(existing, state, "replay", false)
      yield* runProgram(pipeline, input, existing, runner)
      yield* Scope.close(runner.config.scope, Exit.void)
      // A replay appends nothing, so the store cannot stop it; a damaged completion it served can.
      yield* stopped(runner)
      const claimed = new Set(runner.served)
      const unclaimed = state.completionOrder.filter((id) => !claimed.has(id))
      const stop = runner.abort?._tag === "ReplayStopped" ? runner.abort.entry : undefined
      const reordered = runner.replayLog.some((e) => e.outcome === "reordered")
      const diverged = runner.replayLog.some((e) => e.outcome === "diverged") ||
        (stop?.outcome === "not-in-journal" && state.status === "completed") ||
        (stop === undefined && unclaimed.length > 0)
      return {
        runId: existing.runId,
        pipeline: pipeline.name,
        steps: runner.replayLog,
        unclaimed,
        outcome: diverged ? "diverged" : stop !== undefined ? "incomplete" : reordered ? "reordered" : "identical"
      } satisfies ReplayReport
    })

  const service = {
    owner,
    run,
    resume,
    replay,
    rollback,
    recover,
    resetBreaker,
    breakerState,
    getRun,
    lookup: (pipeline: { readonly name: string }, key: string) => store.findByKey(pipeline.name, key),
    runs: store.listRuns,
    events: (runId: string) => Effect.flatMap(store.readEvents(runId), Event.decodeAllWithSeq),
    state: readState
  }
  return { service, keepLeases: leases.keep }
}
