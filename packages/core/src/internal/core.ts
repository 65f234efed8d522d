/**
 * What every engine operation shares: the store, this worker's name and lease keeper, reading a run's
 * journal, taking a run's lease, and the refusals worded once.
 */
import { randomUUID } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type { RunError } from "../Engine.js"
import * as Event from "../Event.js"
import type { EventStoreService, RunPatch, RunRecord } from "../EventStore.js"
import * as Failure from "../Failure.js"
import * as Journal from "../Journal.js"
import type * as Pipeline from "../Pipeline.js"
import { PastPivot, PipelineMismatch, RunInProgress, RunNotFound, RunNotResumable } from "../RunError.js"
import type { StoreError } from "../StoreError.js"
import { Leases } from "./leases.js"
import { watchable } from "./owner.js"

export interface Core {
  readonly store: EventStoreService
  readonly owner: string
  readonly leaseMs: number
  readonly leases: Leases
}

export const make = (store: EventStoreService, options: { readonly leaseMs: number; readonly owner: string }): Core => ({
  store,
  owner: options.owner,
  leaseMs: options.leaseMs,
  leases: new Leases(store, options.leaseMs)
})

// 48 random bits: the first 12 hex digits of a v4 UUID (Node hands those out of a cached entropy pool,
// ~3× cheaper than `randomBytes` per id).
export const newRunId = (now: number) => {
  const uuid = randomUUID()
  return `run_${now.toString(36).padStart(9, "0")}${uuid.slice(0, 8)}${uuid.slice(9, 13)}`
}

// Completions are folded from their step columns, without their bodies: an execution that serves them
// reads those once, when it starts (`bodiesOf`); inspecting a run reads none.
export const readState = (core: Core, runId: string) => Effect.flatMap(core.store.readFold(runId), Journal.foldStored)

const noBodies: ReadonlyMap<number, string> = new Map()

/** The bodies an execution serves its completions from: one read, only when the fold went without them. */
export const bodiesOf = (core: Core, runId: string, state: Journal.RunState) =>
  Journal.needsBodies(state) ? core.store.readBodies(runId) : Effect.succeed(noBodies)

/** A journaled value decoded with the pipeline's Schema, or a `Deterministic` failure saying what to do. */
export const decodeStored = <A>(
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

/** A run's journal and the input it was started with, decoded with the pipeline's Schema. */
export const journalOf = <I, O, E, R>(core: Core, pipeline: Pipeline.Pipeline<I, O, E, R>, run: RunRecord) =>
  Effect.flatMap(readState(core, run.runId), (state) =>
    Effect.map(
      decodeStored(pipeline.codec.decodeInput, state.started?.input, "input", run.runId),
      (input) => ({ state, input })
    ))

/** A run by id or unique id prefix. */
export const getRun = (core: Core, runIdOrPrefix: string): Effect.Effect<RunRecord, RunNotFound | StoreError> =>
  Effect.flatMap(core.store.getRun(runIdOrPrefix), (exact) => {
    if (Option.isSome(exact)) return Effect.succeed(exact.value)
    return Effect.flatMap(core.store.findByPrefix(runIdOrPrefix, 2), (found) => {
      const [first, second] = found
      if (first !== undefined && second === undefined) return Effect.succeed(first)
      return Effect.fail(
        new RunNotFound({
          runId: runIdOrPrefix,
          ...(first === undefined ? {} : { ambiguous: true }),
          message: first === undefined
            ? `no run has the id ${runIdOrPrefix}`
            : `${runIdOrPrefix} is the prefix of several runs; type more of the id`
        })
      )
    })
  })

export interface LeaseRequest {
  readonly reason: string
  /** The store takes the run only if its lease ran out (else the fencing token alone guards the takeover). */
  readonly requireExpired: boolean
  readonly patch: RunPatch
}

/** Take an existing run's lease (a CAS on its fencing token), journaling why. */
export const lease = (core: Core, run: RunRecord, request: LeaseRequest) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const expiresAt = now + core.leaseMs
    return core.store.acquire({
      runId: run.runId,
      expectedToken: run.leaseToken,
      owner: core.owner,
      now,
      leaseExpiresAt: expiresAt,
      requireExpired: request.requireExpired,
      events: (token) => [
        Event.encode(Event.make(Event.RunResumed, { at: now, reason: request.reason })),
        Event.encode(Event.make(Event.LeaseTaken, { at: now, owner: core.owner, token, expiresAt }))
      ],
      patch: request.patch
    }).pipe(Effect.catchTag("LeaseLost", () =>
      // Another worker won the takeover race: it owns the run now.
      Effect.flatMap(core.store.getRun(run.runId), (latest) => Effect.fail(inProgress(Option.getOrElse(latest, () => run))))
    ))
  })

/**
 * Wait for a live lease: until the store says the run may have changed (its worker finished, failed or
 * gave it up), or until the lease should expire (at least 50 ms). An owner on this host is looked at
 * again every second: its process dying is written nowhere, so no store can wake us for it.
 */
export const waitForLease = (core: Core, run: RunRecord, now: number) =>
  core.store.awaitRunChange(
    run.runId,
    Duration.millis(Math.max(50, Math.min(watchable(run.owner) ? 1000 : Infinity, run.leaseExpiresAt - now)))
  )

export const checkPipeline = (pipeline: { readonly name: string }, run: RunRecord) =>
  run.pipeline === pipeline.name ? Effect.void : Effect.fail(
    new PipelineMismatch({
      runId: run.runId,
      expected: pipeline.name,
      actual: run.pipeline,
      message: `run ${run.runId} belongs to pipeline "${run.pipeline}", not "${pipeline.name}"`
    })
  )

export const notResumable = (run: RunRecord) =>
  new RunNotResumable({
    runId: run.runId,
    status: run.status,
    message: `run ${run.runId} is ${
      run.status.replace("_", " ")
    }; it cannot be started again by key: look at what happened (its events), then resume or roll it back`
  })

export const inProgress = (run: RunRecord) =>
  new RunInProgress({
    runId: run.runId,
    owner: run.owner,
    leaseExpiresAt: run.leaseExpiresAt,
    message: `run ${run.runId} (key ${run.key}) is running on ${run.owner} until at least ${
      new Date(run.leaseExpiresAt).toISOString()
    }; wait for it (ifRunning: "wait") or start it again after its lease expires`
  })

export const pastPivot = (run: RunRecord, stepId: string, status: RunRecord["status"] = run.status) =>
  new PastPivot({
    runId: run.runId,
    stepId,
    status,
    message:
      `run ${run.runId} is past its pivot: irreversible step ${stepId} completed, so nothing before it may be undone and the run can only go forward; resume it after fixing the cause (it was left ${
        status.replace("_", " ")
      })`
  })

/** The outcome of a finished run, as stored: its output, or its failure. */
export const stored = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  run: RunRecord,
  known?: Journal.RunState
): Effect.Effect<O, RunError> =>
  Effect.flatMap(known === undefined ? readState(core, run.runId) : Effect.succeed(known), (state): Effect.Effect<O, RunError> => {
    if (state.status === "completed") {
      return decodeStored(pipeline.codec.decodeOutput, state.output, "output", run.runId)
    }
    if (state.failure !== undefined) {
      return Effect.fail(Failure.inRun(state.failure.failure, run.runId, state.failure.stepId))
    }
    return Effect.fail(notResumable(run))
  })
