/**
 * The in-memory EventStore: the reference semantics every adapter's conformance suite checks against.
 * JavaScript runs one callback at a time, so each operation (one `Effect.sync`) is atomic.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { NewEvent, StoredEvent } from "../Event.js"
import type { ClaimResult, EventStoreService, RunPatch, RunRecord } from "../EventStore.js"
import { LeaseLost, SeqConflict, StoreError } from "../StoreError.js"
import * as RunWaiters from "./runWaiters.js"

/** The order of every listing: newest created first, ties by id. */
const newestFirst = (runs: Array<RunRecord>): Array<RunRecord> =>
  runs.sort((a, b) => b.createdAt - a.createdAt || (a.runId < b.runId ? 1 : -1))

export const makeMemory = (): EventStoreService => {
  const runs = new Map<string, RunRecord>()
  const byKey = new Map<string, string>()
  const events = new Map<string, Array<StoredEvent>>()
  const settings = new Map<string, string>()
  const counters = new Map<string, { count: number; actors: Array<string> }>()
  const waiters = RunWaiters.make()

  const keyOf = (pipeline: string, key: string) => `${pipeline}\u0000${key}`

  const write = (
    run: RunRecord,
    newEvents: ReadonlyArray<NewEvent>,
    patch: RunPatch | undefined,
    now: number
  ): RunRecord => {
    const log = events.get(run.runId) ?? []
    let seq = run.lastSeq
    for (const e of newEvents) {
      seq += 1
      const { step } = e
      log.push({
        runId: run.runId,
        seq,
        type: e.type,
        v: e.v,
        at: e.at,
        data: e.data,
        // A completion's step columns, kept as the SQLite store keeps them: these five fields, copied.
        ...(step === undefined ? {} : {
          step: {
            stepId: step.stepId,
            name: step.name,
            inputHash: step.inputHash,
            attempt: step.attempt,
            startedAt: step.startedAt
          }
        })
      })
    }
    events.set(run.runId, log)
    // `updatedAt` tracks the run's status changes, not every step (which would touch its index each time).
    const next: RunRecord = { ...run, ...applyPatch(patch), lastSeq: seq, updatedAt: patch === undefined ? run.updatedAt : now }
    runs.set(run.runId, next)
    return next
  }

  /** One more delivery on the run, stored; the run as counted. */
  const countDelivery = (run: RunRecord, now: number): RunRecord => {
    const counted = { ...run, deliveries: run.deliveries + 1, lastDeliveredAt: Math.max(run.lastDeliveredAt, now) }
    runs.set(run.runId, counted)
    return counted
  }

  return {
    claim: (request) =>
      Effect.suspend((): Effect.Effect<ClaimResult, StoreError> => {
        const existingId = byKey.get(keyOf(request.pipeline, request.key))
        const existing = existingId === undefined ? undefined : runs.get(existingId)
        if (existing !== undefined) {
          return Effect.succeed({ _tag: "Existing", run: countDelivery(existing, request.now) } as const)
        }
        if (runs.has(request.runId)) {
          return Effect.fail(
            new StoreError({ operation: "claim", message: `run id ${request.runId} is already taken by another run` })
          )
        }
        const run: RunRecord = {
          runId: request.runId,
          pipeline: request.pipeline,
          version: request.version,
          key: request.key,
          status: "running",
          createdAt: request.now,
          updatedAt: request.now,
          lastSeq: 0,
          owner: request.owner,
          leaseToken: 1,
          leaseExpiresAt: request.leaseExpiresAt,
          parentRunId: request.parentRunId,
          correlationId: request.correlationId,
          deliveries: 1,
          lastDeliveredAt: request.now
        }
        byKey.set(keyOf(request.pipeline, request.key), run.runId)
        return Effect.succeed({ _tag: "Created", run: write(run, request.events, undefined, request.now) } as const)
      }),

    deliver: (request) =>
      Effect.suspend(() => {
        const run = runs.get(request.runId)
        if (run === undefined) {
          return Effect.fail(
            new StoreError({ operation: "deliver", message: `no run has the id ${request.runId}` })
          )
        }
        const counted = countDelivery(run, request.now)
        const answered = request.answered ?? []
        // An owner may be appending to a running or compensating run: its log is left to it.
        if (answered.length === 0 || counted.status === "running" || counted.status === "compensating") {
          return Effect.succeed(counted)
        }
        return Effect.succeed(write(counted, answered, undefined, request.now))
      }),

    acquire: (request) =>
      Effect.suspend(() => {
        const run = runs.get(request.runId)
        if (run === undefined || run.leaseToken !== request.expectedToken) {
          return Effect.fail(
            new LeaseLost({
              runId: request.runId,
              token: request.expectedToken,
              message: `run ${request.runId} was taken by another worker (token ${run?.leaseToken ?? "none"})`
            })
          )
        }
        if (request.requireExpired && run.status === "running" && run.leaseExpiresAt > request.now) {
          return Effect.fail(
            new LeaseLost({
              runId: request.runId,
              token: request.expectedToken,
              message: `run ${request.runId} is still leased by ${run.owner} until ${new Date(run.leaseExpiresAt).toISOString()}`
            })
          )
        }
        const token = run.leaseToken + 1
        const leased: RunRecord = {
          ...run,
          owner: request.owner,
          leaseToken: token,
          leaseExpiresAt: request.leaseExpiresAt,
          updatedAt: request.now
        }
        return Effect.succeed(write(leased, request.events(token), request.patch, request.now))
      }),

    append: (request) =>
      Effect.suspend((): Effect.Effect<number, LeaseLost | SeqConflict> => {
        const run = runs.get(request.runId)
        if (run === undefined || run.leaseToken !== request.token) {
          return Effect.fail(LeaseLost.appendRefused(request.runId, request.token, run?.leaseToken))
        }
        if (request.expectedSeq !== undefined && request.expectedSeq !== run.lastSeq) {
          return Effect.fail(
            new SeqConflict({ runId: request.runId, expectedSeq: request.expectedSeq, actualSeq: run.lastSeq })
          )
        }
        const lastSeq = write(run, request.events, request.patch, request.now).lastSeq
        if (request.patch?.status !== undefined) waiters.wake(run.runId)
        return Effect.succeed(lastSeq)
      }),

    renew: (request) =>
      Effect.suspend(() => {
        const run = runs.get(request.runId)
        if (run === undefined || run.leaseToken !== request.token) {
          return Effect.fail(LeaseLost.renewalRefused(request.runId, request.token))
        }
        runs.set(run.runId, { ...run, leaseExpiresAt: request.leaseExpiresAt })
        // A lease renewed to now is given up: a waiter may take the run at once.
        if (request.leaseExpiresAt <= request.now) waiters.wake(run.runId)
        return Effect.void
      }),

    getRun: (runId) => Effect.sync(() => Option.fromNullable(runs.get(runId))),

    findByKey: (pipeline, key) =>
      Effect.sync(() => {
        const id = byKey.get(keyOf(pipeline, key))
        return Option.fromNullable(id === undefined ? undefined : runs.get(id))
      }),

    findByPrefix: (prefix, limit) =>
      Effect.sync(() => newestFirst([...runs.values()].filter((r) => r.runId.startsWith(prefix))).slice(0, limit)),

    listRuns: (filter) =>
      Effect.sync(() => {
        const matching = newestFirst([...runs.values()].filter((r) =>
            (filter.status === undefined || r.status === filter.status) &&
            (filter.pipeline === undefined || r.pipeline === filter.pipeline) &&
            (filter.version === undefined || r.version === filter.version) &&
            (filter.key === undefined || r.key === filter.key) &&
            (filter.since === undefined || r.updatedAt >= filter.since)
        ))
        return filter.limit === undefined ? matching : matching.slice(0, filter.limit)
      }),

    incrementCounter: ({ actor, keepLast, key }) =>
      Effect.sync(() => {
        const prev = counters.get(key) ?? { count: 0, actors: [] }
        const next = { count: prev.count + 1, actors: [...prev.actors, actor].slice(-Math.max(1, keepLast)) }
        counters.set(key, next)
        return next
      }),

    getSetting: (key) => Effect.sync(() => Option.fromNullable(settings.get(key))),

    putSetting: (key, value) => Effect.sync(() => void settings.set(key, value)),

    readEvents: (runId, fromSeq = 1) =>
      Effect.sync(() => (events.get(runId) ?? []).filter((e) => e.seq >= fromSeq)),

    readFold: (runId) =>
      Effect.sync(() =>
        (events.get(runId) ?? []).map((e) =>
          e.step === undefined ? e : { runId: e.runId, seq: e.seq, type: e.type, v: e.v, at: e.at, step: e.step }
        )
      ),

    readBodies: (runId) =>
      Effect.sync(() => new Map((events.get(runId) ?? []).flatMap((e) => e.step === undefined ? [] : [[e.seq, e.data]]))),

    awaitRunChange: (runId, atMost) => waiters.wait({ runId, atMost, current: Effect.sync(() => runs.get(runId)) })
  }
}

/** The projection fields a patch sets; `failure: null` clears a previous failure. */
const applyPatch = (patch: RunPatch | undefined): Partial<RunRecord> => {
  if (patch === undefined) return {}
  const out: { -readonly [K in keyof RunRecord]?: RunRecord[K] } = {}
  if (patch.status !== undefined) out.status = patch.status
  if (patch.failure === null) {
    out.failureClass = undefined
    out.failureFingerprint = undefined
    out.failureReason = undefined
  } else if (patch.failure !== undefined) {
    out.failureClass = patch.failure.failureClass
    out.failureFingerprint = patch.failure.failureFingerprint
    out.failureReason = patch.failure.failureReason
  }
  return out
}
