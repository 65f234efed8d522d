/**
 * The `EventStore` port: an append-only, per-run ordered log plus a run projection updated in the same
 * transaction, atomic key claims and fenced leases. Adapters live in `@ledgerflow/store`; the in-memory
 * reference implementation is here, for tests.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { FoldRow, NewEvent, StoredEvent } from "./Event.js"
import { makeMemory } from "./internal/memoryStore.js"
import * as internalWaiters from "./internal/runWaiters.js"
import type { LeaseLost, SeqConflict, StoreError } from "./StoreError.js"

export type RunStatus =
  | "running"
  | "completed"
  | "failed"
  | "compensating"
  | "rolled_back"
  | "needs_attention"
  | "cancelled"

export const RunStatus = Schema.Literal(
  "running",
  "completed",
  "failed",
  "compensating",
  "rolled_back",
  "needs_attention",
  "cancelled"
)

/** The projection of a run's log that the store keeps beside it. */
export interface RunRecord {
  readonly runId: string
  readonly pipeline: string
  readonly version: string
  readonly key: string
  readonly status: RunStatus
  readonly createdAt: number
  /** When the run's status (or failure) last changed: not moved by every step's append. */
  readonly updatedAt: number
  /** The seq of the last event appended. */
  readonly lastSeq: number
  readonly owner: string
  /** The fencing token: incremented by every takeover; appends must carry the current one. */
  readonly leaseToken: number
  readonly leaseExpiresAt: number
  /** `"transient"` or `"deterministic"` when the run failed. */
  readonly failureClass?: string | undefined
  readonly failureFingerprint?: string | undefined
  readonly failureReason?: string | undefined
  readonly parentRunId?: string | undefined
  readonly correlationId?: string | undefined
  /**
   * Starts by key that reached this run (its first, the claim that created it, included): "21 deliveries,
   * 1 execution". Counted atomically by `claim` (a claim that finds the run counts one) and `deliver`.
   * The first delivery is at `createdAt`.
   */
  readonly deliveries: number
  /** When the latest delivery reached the run (`createdAt` until a redelivery). */
  readonly lastDeliveredAt: number
}

/** What an append changes in the run projection, in the same transaction. */
export interface RunPatch {
  readonly status?: RunStatus
  /** Set with a `failed` status; cleared (null) when the run is resumed. */
  readonly failure?: {
    readonly failureClass: string
    readonly failureFingerprint: string
    readonly failureReason: string
  } | null
}

export interface ClaimRequest {
  readonly runId: string
  readonly pipeline: string
  readonly version: string
  readonly key: string
  readonly owner: string
  readonly now: number
  readonly leaseExpiresAt: number
  readonly parentRunId?: string | undefined
  readonly correlationId?: string | undefined
  /** The run's first events (RunStarted, LeaseTaken), appended only when the claim creates the run. */
  readonly events: ReadonlyArray<NewEvent>
  /**
   * A hint for a store that groups commits: \`true\` when no other write of this process is about to share
   * the commit (the engine is executing no other run), so waiting to gather a batch would only add latency.
   */
  readonly alone?: boolean | undefined
}

/**
 * The run was created by this claim, or it already existed: then only its delivery was counted (the
 * returned record includes it) and no event was written.
 */
export type ClaimResult =
  | { readonly _tag: "Created"; readonly run: RunRecord }
  | { readonly _tag: "Existing"; readonly run: RunRecord }

export interface AcquireRequest {
  readonly runId: string
  /** The token the caller saw; the acquire fails if another worker took the run since. */
  readonly expectedToken: number
  readonly owner: string
  readonly now: number
  readonly leaseExpiresAt: number
  /** When true, the current lease must have expired (a takeover from a dead worker). */
  readonly requireExpired: boolean
  /** Appended with the new token (RunResumed, LeaseTaken). */
  readonly events: (token: number) => ReadonlyArray<NewEvent>
  readonly patch?: RunPatch
}

export interface AppendRequest {
  readonly runId: string
  readonly token: number
  /** When set, the append fails unless the run's last seq is this one. */
  readonly expectedSeq?: number
  readonly events: ReadonlyArray<NewEvent>
  readonly patch?: RunPatch
  readonly now: number
  /**
   * `false` for a record the engine can rebuild from the rest of the log (a run's completion, re-derived by
   * serving every step): a store may commit it without its own fsync, making it durable with the next
   * durable write. Default true. Claims and lease renewals are always of this kind.
   */
  readonly durable?: boolean
  /**
   * A hint for a store that groups commits: \`true\` when no other write of this process is about to share
   * the commit (the engine is executing no other run), so waiting to gather a batch would only add latency.
   */
  readonly alone?: boolean | undefined
}

/**
 * A start by key that found its run (a redelivery): counted on the run in one small write. When the start
 * is answered from the run's stored outcome (output or failure, nothing executed), the caller passes the
 * `answered` events (a `RunRedelivered`): the store appends them in the same transaction, after the run's
 * last seq, unless the run is `running` or `compensating` by then (an owner may be appending; the delivery
 * is then only counted). No lease or token is needed: nothing about the run's state changes.
 */
export interface DeliverRequest {
  readonly runId: string
  readonly now: number
  readonly answered?: ReadonlyArray<NewEvent> | undefined
}

export interface RunFilter {
  readonly status?: RunStatus | undefined
  readonly pipeline?: string | undefined
  readonly version?: string | undefined
  readonly key?: string | undefined
  /** Runs whose status changed at or after this epoch millisecond. */
  readonly since?: number | undefined
  readonly limit?: number | undefined
}

export interface EventStoreService {
  /**
   * Atomically create the run for (pipeline, key) — its first delivery — or report the one that exists,
   * counting this start as one more of its deliveries in the same write.
   */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ClaimResult, StoreError>
  /**
   * Count a redelivery on an existing run (see `DeliverRequest`); returns the run as it is after the count.
   * Fails with a `StoreError` when no run has that id.
   */
  readonly deliver: (request: DeliverRequest) => Effect.Effect<RunRecord, StoreError>
  /** Take an existing run's lease (compare-and-set on its token), bumping the token. */
  readonly acquire: (request: AcquireRequest) => Effect.Effect<RunRecord, LeaseLost | StoreError>
  /** Append events and patch the projection in one transaction; returns the new last seq. */
  readonly append: (request: AppendRequest) => Effect.Effect<number, LeaseLost | SeqConflict | StoreError>
  /** Extend the lease of the current owner. */
  readonly renew: (
    request: { readonly runId: string; readonly token: number; readonly leaseExpiresAt: number; readonly now: number }
  ) => Effect.Effect<void, LeaseLost | StoreError>
  readonly getRun: (runId: string) => Effect.Effect<Option.Option<RunRecord>, StoreError>
  readonly findByKey: (pipeline: string, key: string) => Effect.Effect<Option.Option<RunRecord>, StoreError>
  /** Runs whose id starts with `prefix` (for ids typed by people), newest first; at most `limit`. */
  readonly findByPrefix: (prefix: string, limit: number) => Effect.Effect<ReadonlyArray<RunRecord>, StoreError>
  /** Runs matching the filter, newest created first. */
  readonly listRuns: (filter: RunFilter) => Effect.Effect<ReadonlyArray<RunRecord>, StoreError>
  /**
   * Count one more turn on a durable counter (the loop guard's, per conversation thread), atomically
   * across processes; returns the new count and the last `keepLast` actors, newest last.
   */
  readonly incrementCounter: (request: {
    readonly key: string
    readonly actor: string
    readonly keepLast: number
    readonly now: number
  }) => Effect.Effect<{ readonly count: number; readonly actors: ReadonlyArray<string> }, StoreError>
  /** A small durable setting (e.g. when a pipeline's storm breaker was last reset). */
  readonly getSetting: (key: string) => Effect.Effect<Option.Option<string>, StoreError>
  readonly putSetting: (key: string, value: string) => Effect.Effect<void, StoreError>
  /** A run's events in seq order, from `fromSeq` (inclusive, default 1). */
  readonly readEvents: (runId: string, fromSeq?: number) => Effect.Effect<ReadonlyArray<StoredEvent>, StoreError>
  /**
   * A run's events in seq order as its fold reads them: like `readEvents`, except that a step's completion
   * kept with its step columns comes without its body (a `StoredCompletion`). Folding a long log then
   * reads no bodies; a resume reads the bodies of the steps it serves with `readBodies`.
   */
  readonly readFold: (runId: string) => Effect.Effect<ReadonlyArray<FoldRow>, StoreError>
  /** The bodies of a run's completions kept with step columns (those `readFold` hands without), by seq. */
  readonly readBodies: (runId: string) => Effect.Effect<ReadonlyMap<number, string>, StoreError>
  /**
   * Wait for a run held by another worker: returns when the run's record may have changed (its status, or
   * its lease given up), or after `atMost`, whichever comes first — at once when the run is no longer held
   * under a live lease, so a change made between the caller's read and this call is not missed. It never
   * fails: the caller reads the run again either way. Which writes wake it depends on the store: the
   * memory store, its own; SQLite, the writes of this store (another process's are seen when it reads
   * the run again, each second); Postgres, every worker's (LISTEN/NOTIFY).
   */
  readonly awaitRunChange: (runId: string, atMost: Duration.DurationInput) => Effect.Effect<void>
}

export class EventStore extends Context.Tag("@ledgerflow/core/EventStore")<EventStore, EventStoreService>() {}

/** For adapters: the callers of `awaitRunChange` of one store, woken by its writes. */
export type RunWaiters = internalWaiters.RunWaiters

/**
 * For adapters: a store's waiters. `wait` registers, then reads the run, and waits only while it is held
 * under a live lease; `wake(runId)` after a committed write that changed the run's status or gave its
 * lease up.
 */
export const makeRunWaiters: () => RunWaiters = internalWaiters.make

/** The in-memory reference store: for tests and examples that need no file. Each layer build is empty. */
export const layerMemory: Layer.Layer<EventStore> = Layer.sync(EventStore, makeMemory)
