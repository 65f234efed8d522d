/**
 * The engine's implementation: idempotent starts by key, takeovers under fenced leases, execution of a
 * pipeline against its journal, and replay without side effects.
 */
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Event from "../Event.js"
import type { EventStoreService, RunRecord } from "../EventStore.js"
import * as Failure from "../Failure.js"
import * as Journal from "../Journal.js"
import type { Pipeline } from "../Pipeline.js"
import { RunContext } from "../RunContext.js"
import {
  InvalidInput,
  type InvalidKey,
  PipelineMismatch,
  RunInProgress,
  RunNotFound,
  RunNotResumable,
  validateKey
} from "../RunError.js"
import { StepDiverged } from "../Step.js"
import { LeaseLost, type SeqConflict, type StoreError } from "../StoreError.js"
import { hashJson, toJson } from "./hash.js"
import { type ReplayEntry, StepRunner } from "./runner.js"

export interface EngineOptions {
  /** How long a worker's claim on a run lasts without renewal. Default 30 seconds. */
  readonly leaseDuration?: Duration.DurationInput
  /** This worker's name in leases. Default `host/pid/random`. */
  readonly owner?: string
}

export interface RunOptions {
  /** The idempotency key: a second start with the same key never executes a step twice. */
  readonly key?: string
  /** When another worker holds the run: fail with `RunInProgress` (default) or wait for it. */
  readonly ifRunning?: "fail" | "wait"
  readonly parentRunId?: string
  readonly correlationId?: string
}

export interface ResumeOptions {
  /** Re-execute steps whose input differs from the journal's instead of refusing them. */
  readonly reexecuteDiverged?: boolean
}

export interface ReplayReport {
  readonly runId: string
  readonly pipeline: string
  /** Each step call of the replayed code, in call order. */
  readonly steps: ReadonlyArray<ReplayEntry>
  /** Completions in the journal that the replayed code never asked for. */
  readonly unclaimed: ReadonlyArray<string>
  /** `identical`: every step served; `diverged`: the code and the log disagree; `incomplete`: the
   * replay reached the step where the original run stopped. */
  readonly outcome: "identical" | "diverged" | "incomplete"
}

/** Everything a start can fail with, besides the run's own failure. */
export type EngineError =
  | InvalidInput
  | InvalidKey
  | RunInProgress
  | RunNotResumable
  | RunNotFound
  | PipelineMismatch
  | LeaseLost
  | SeqConflict
  | StoreError
  | Event.UnknownEvent

export type RunError = Failure.Failure | StepDiverged | EngineError

export const make = (store: EventStoreService, options: EngineOptions = {}) => {
  const leaseMs = Duration.toMillis(options.leaseDuration ?? Duration.seconds(30))
  const owner = options.owner ?? `${hostname()}/${process.pid}/${randomBytes(3).toString("hex")}`

  const newRunId = (now: number) => `run_${now.toString(36).padStart(9, "0")}${randomBytes(6).toString("hex")}`

  const readState = (runId: string) =>
    store.readEvents(runId).pipe(Effect.flatMap(Event.decodeAll), Effect.map(Journal.fold))

  const decodeStored = <A>(
    decode: (u: unknown) => Either.Either<A, ParseResult.ParseError>,
    value: unknown,
    what: string
  ): Effect.Effect<A, Failure.Deterministic> => {
    const decoded = decode(value)
    return Either.isRight(decoded) ? Effect.succeed(decoded.right) : Effect.fail(Failure.deterministic(
      `the journaled ${what} no longer decodes with the pipeline's Schema (${
        ParseResult.TreeFormatter.formatErrorSync(decoded.left)
      }); bump the pipeline version or migrate the Schema`,
      { rule: "schema" }
    ))
  }

  /** The outcome of a finished run, as stored: its output, or its failure. */
  const stored = <I, O, E, R>(pipeline: Pipeline<I, O, E, R>, run: RunRecord) =>
    Effect.flatMap(readState(run.runId), (state): Effect.Effect<O, RunError> => {
      if (state.status === "completed") return decodeStored(pipeline.codec.decodeOutput, state.output, "output")
      if (state.failure !== undefined) return Effect.fail(state.failure.failure)
      return Effect.fail(notResumable(run))
    })

  const notResumable = (run: RunRecord) =>
    new RunNotResumable({
      runId: run.runId,
      status: run.status,
      message: `run ${run.runId} is ${run.status.replace("_", " ")}; it cannot be started again by key`
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

  /** Keep the lease alive while the run executes; fails when another worker has taken it. */
  const keepLease = (runId: string, token: number): Effect.Effect<never, LeaseLost | StoreError> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.renew({ runId, token, now, leaseExpiresAt: now + leaseMs }))
      .pipe(Effect.delay(Duration.millis(leaseMs / 3)), Effect.forever)

  /** Give the lease up at once (the caller interrupted us): another start may take over immediately. */
  const releaseLease = (runId: string, token: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.renew({ runId, token, now, leaseExpiresAt: now }))
      .pipe(Effect.ignore)

  /** Fail with what stopped the execution from inside (a stale lease, the store), if anything did. */
  const stopped = (runner: StepRunner): Effect.Effect<void, LeaseLost | SeqConflict | StoreError> => {
    const abort = runner.abort
    return abort === undefined || abort._tag === "ReplayStopped" ? Effect.void : Effect.fail(abort)
  }

  /** Execute the pipeline under the run's lease, against its journal; journal the outcome. */
  const execute = <I, O, E, R>(
    pipeline: Pipeline<I, O, E, R>,
    input: I,
    run: RunRecord,
    state: Journal.RunState,
    reexecuteDiverged: boolean
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const runner = new StepRunner({
        runId: run.runId,
        mode: "execute",
        reexecuteDiverged,
        state,
        store,
        token: run.leaseToken
      })
      const program = Effect.provideService(pipeline.run(input), RunContext, {
        runId: run.runId,
        key: run.key,
        pipeline: pipeline.name,
        mode: "execute",
        runner
      })
      const exit = yield* Effect.exit(Effect.raceFirst(program, keepLease(run.runId, run.leaseToken)))
      yield* stopped(runner)
      const at = yield* Clock.currentTimeMillis
      if (Exit.isSuccess(exit)) {
        const encoded = pipeline.codec.encodeOutput(exit.value)
        if (Either.isRight(encoded)) {
          yield* runner.append([new Event.RunCompleted({ at, output: encoded.right })], { status: "completed" })
          yield* stopped(runner)
          return exit.value
        }
        return yield* fail(runner, Failure.deterministic(
          `pipeline ${pipeline.name} returned an output that does not match its Schema: ${
            ParseResult.TreeFormatter.formatErrorSync(encoded.left)
          }`,
          { rule: "schema" }
        ), undefined, at)
      }
      if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
      const error = Cause.failureOption(exit.cause)
      if (Option.isSome(error) && error.value instanceof LeaseLost) return yield* Effect.fail(error.value)
      if (Option.isSome(error) && error.value instanceof StepDiverged) {
        const failure = Failure.deterministic(error.value.message, { rule: "divergence" })
        return yield* fail(runner, failure, error.value.stepId, at, error.value)
      }
      const failure = Option.isSome(error) && Failure.isFailure(error.value)
        ? error.value
        : Failure.classify(Option.isSome(error) ? error.value : Cause.squash(exit.cause))
      return yield* fail(runner, failure, runner.failedStep.get(failure), at)
    }).pipe(
      // Interrupted by its caller: give the lease up so that another start can resume the run at once.
      Effect.onInterrupt(() => releaseLease(run.runId, run.leaseToken))
    )

  const fail = (
    runner: StepRunner,
    failure: Failure.Failure,
    stepId: string | undefined,
    at: number,
    reported: RunError = failure
  ): Effect.Effect<never, RunError> =>
    Effect.gen(function*() {
      const fingerprint = `${stepId?.replace(/#\d+$|\[.*\]$/, "") ?? ""}|${Failure.fingerprint(failure)}`
      yield* runner.append([
        new Event.RunFailed({ at, failure, fingerprint, ...(stepId !== undefined ? { stepId } : {}) })
      ], {
        status: "failed",
        failure: {
          failureClass: Failure.classification(failure),
          failureFingerprint: fingerprint,
          failureReason: failure.reason
        }
      })
      yield* stopped(runner)
      return yield* Effect.fail(reported)
    })

  /** Take a run over (CAS on its fencing token), then execute it from its journal. */
  const takeOver = <I, O, E, R>(
    pipeline: Pipeline<I, O, E, R>,
    run: RunRecord,
    reason: string,
    requireExpired: boolean,
    reexecuteDiverged: boolean
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
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
          Event.encode(new Event.RunResumed({ at: now, reason })),
          Event.encode(new Event.LeaseTaken({ at: now, owner, token, expiresAt }))
        ],
        patch: { status: "running", failure: null }
      }).pipe(Effect.catchTag("LeaseLost", () =>
        // Another worker won the takeover race: it owns the run now.
        Effect.flatMap(store.getRun(run.runId), (latest) => Effect.fail(inProgress(Option.getOrElse(latest, () => run))))
      ))
      const state = yield* readState(run.runId)
      const input = yield* decodeStored(pipeline.codec.decodeInput, state.started?.input, "input")
      return yield* execute(pipeline, input, acquired, state, reexecuteDiverged)
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
    pipeline: Pipeline<I, O, E, R>,
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
      while (true) {
        const now = yield* Clock.currentTimeMillis
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
          events: [
            Event.encode(
              new Event.RunStarted({
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
            Event.encode(new Event.LeaseTaken({ at: now, owner, token: 1, expiresAt }))
          ]
        })
        if (claim._tag === "Created") return yield* execute(pipeline, input, claim.run, Journal.empty, false)
        const existing = claim.run
        switch (existing.status) {
          case "completed":
            return yield* stored(pipeline, existing)
          case "failed":
            // A deterministic failure is returned as stored: redelivering the same work cannot fix it.
            if (existing.failureClass === "deterministic") return yield* stored(pipeline, existing)
            return yield* takeOver(
              pipeline,
              existing,
              "started again after its retries were exhausted on a transient failure",
              false,
              false
            )
          case "running":
            if (existing.leaseExpiresAt <= now) {
              return yield* takeOver(
                pipeline,
                existing,
                `the lease of ${existing.owner} expired; taken over by ${owner}`,
                true,
                false
              )
            }
            if (runOptions.ifRunning !== "wait") return yield* Effect.fail(inProgress(existing))
            yield* Effect.sleep(Duration.millis(Math.min(1000, Math.max(50, existing.leaseExpiresAt - now))))
            continue
          default:
            return yield* Effect.fail(notResumable(existing))
        }
      }
    })

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
    pipeline: Pipeline<I, O, E, R>,
    runId: string,
    resumeOptions: ResumeOptions = {}
  ): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const existing = yield* getRun(runId)
      yield* checkPipeline(pipeline, existing)
      const now = yield* Clock.currentTimeMillis
      const reexecute = resumeOptions.reexecuteDiverged ?? false
      switch (existing.status) {
        case "completed":
          return yield* stored(pipeline, existing)
        case "failed":
          return yield* takeOver(pipeline, existing, "resumed explicitly", false, reexecute)
        case "running":
          if (existing.leaseExpiresAt > now) return yield* Effect.fail(inProgress(existing))
          return yield* takeOver(pipeline, existing, `the lease of ${existing.owner} expired; resumed`, true, reexecute)
        default:
          return yield* Effect.fail(notResumable(existing))
      }
    })

  const replay = <I, O, E, R>(
    pipeline: Pipeline<I, O, E, R>,
    runId: string
  ): Effect.Effect<ReplayReport, EngineError | Failure.Deterministic, Exclude<R, RunContext>> =>
    Effect.gen(function*() {
      const existing = yield* getRun(runId)
      yield* checkPipeline(pipeline, existing)
      const state = yield* readState(existing.runId)
      const input = yield* decodeStored(pipeline.codec.decodeInput, state.started?.input, "input")
      const runner = new StepRunner({
        runId: existing.runId,
        mode: "replay",
        reexecuteDiverged: false,
        state,
        store,
        token: existing.leaseToken
      })
      yield* Effect.exit(Effect.provideService(pipeline.run(input), RunContext, {
        runId: existing.runId,
        key: existing.key,
        pipeline: pipeline.name,
        mode: "replay",
        runner
      }))
      const claimed = new Set(runner.served)
      const unclaimed = state.completionOrder.filter((id) => !claimed.has(id))
      const stop = runner.abort?._tag === "ReplayStopped" ? runner.abort.entry : undefined
      const diverged = runner.replayLog.some((e) => e.outcome === "diverged") ||
        (stop?.outcome === "not-in-journal" && state.status === "completed") ||
        (stop === undefined && unclaimed.length > 0)
      return {
        runId: existing.runId,
        pipeline: pipeline.name,
        steps: runner.replayLog,
        unclaimed,
        outcome: diverged ? "diverged" : stop !== undefined ? "incomplete" : "identical"
      } satisfies ReplayReport
    })

  return {
    owner,
    run,
    resume,
    replay,
    getRun,
    runs: store.listRuns,
    events: (runId: string) => Effect.flatMap(store.readEvents(runId), Event.decodeAll),
    state: readState
  }
}
