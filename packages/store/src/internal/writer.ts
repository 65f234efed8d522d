/**
 * The hot path's single writer. Writes queue in an array; one drain, scheduled once the fibers that can
 * run have run (`setImmediate`), commits everything queued in one native `BEGIN IMMEDIATE` transaction. In
 * a batch of several, each write runs in its own SAVEPOINT, so a write that throws is rolled back alone.
 *
 * A write submitted `alone` (nothing else of this process is about to write) while nothing is queued is
 * committed at once, in the caller's fiber: no batch could form, so the hop to a later drain would only
 * add latency (~40 µs a step, measured on sequential runs).
 *
 * Durability: commits reach the WAL without a flush; with a `WalSync` (a store opened `synchronous: "full"`)
 * a durable write resumes its caller once a flush of the WAL covers it: at once for a write made alone, else
 * one flush on the thread pool for everything committed before it started, while the event loop goes on
 * with the other runs.
 */
import type Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { StoreError } from "@ledgerflow/core"
import type { WalSync } from "./walSync.js"

export interface SubmitOptions {
  /**
   * False for a write the engine can rebuild (a claim, a run's completion, a lease renewal): its caller
   * resumes at commit, and the write becomes durable with the next flush. Default true.
   */
  readonly durable?: boolean | undefined
  /** Commit at once when nothing is queued: no other write of this process is about to join a batch. */
  readonly alone?: boolean | undefined
}

export interface Writer {
  /**
   * Run `write` inside a transaction. It returns expected outcomes as an Exit (a failed Exit must have
   * written nothing). An exception rolls back this write, or the whole batch when SQLite ended the
   * transaction, and fails the caller with `onError(exception)`.
   */
  readonly submit: <A, E>(
    write: () => Exit.Exit<A, E>,
    onError: (cause: unknown) => StoreError.StoreError,
    options?: SubmitOptions
  ) => Effect.Effect<A, E | StoreError.StoreError>
  /** Commit whatever is queued, now (when the store closes). */
  readonly flush: () => void
}

/** A write on its way: run inside a transaction, then its caller resumed. */
interface Pending {
  /** Its caller went away: skip it if not yet committed, stop waiting if committed. */
  cancel: () => void
  cancelled: boolean
  /** A write that must reach the disk before its caller resumes. */
  readonly durable: boolean
  readonly execute: () => void
  /** Whether the write ran and returned a success (a refusal or an exception is not waited on). */
  readonly succeeded: () => boolean
  /** Resume the caller: with the write's outcome, or with `cause` (its transaction or flush failed). */
  readonly finish: (cause?: unknown) => void
}

export const make = (db: Database.Database, walSync: WalSync | undefined): Writer => {
  let queue: Array<Pending> = []
  let scheduled = false

  // Called alone, `one` is a BEGIN IMMEDIATE transaction; called inside `many`, a SAVEPOINT.
  const one = db.transaction((pending: Pending) => pending.execute())
  const many = db.transaction((batch: ReadonlyArray<Pending>) => {
    for (const pending of batch) {
      try {
        one(pending)
      } catch (cause) {
        // The write is rolled back and its outcome is already its error; but some errors (I/O, disk
        // full) end the whole transaction, and then the whole batch fails.
        if (!db.inTransaction) throw cause
      }
    }
  })

  /**
   * Commit a batch in one transaction, then resume each caller (after the flush, for those that wait).
   * \`alone\`: nothing else is running, so the flush is made at once rather than alongside other work.
   */
  const commit = (batch: ReadonlyArray<Pending>, alone: boolean) => {
    try {
      if (batch.length === 1) one.immediate(batch[0]!)
      else many.immediate(batch)
    } catch (cause) {
      for (const pending of batch) pending.finish(cause)
      return
    }
    walSync?.committed(batch.some((pending) => pending.durable), alone)
    for (const pending of batch) {
      if (walSync === undefined || !pending.durable || !pending.succeeded()) pending.finish()
      else pending.cancel = walSync.whenDurable(pending.finish)
    }
  }

  const drain = () => {
    scheduled = false
    const batch = queue.filter((pending) => !pending.cancelled)
    queue = []
    if (batch.length > 0) commit(batch, false)
  }

  const submit = <A, E>(
    write: () => Exit.Exit<A, E>,
    onError: (cause: unknown) => StoreError.StoreError,
    { alone = false, durable = true }: SubmitOptions = {}
  ): Effect.Effect<A, E | StoreError.StoreError> =>
    Effect.async<A, E | StoreError.StoreError>((resume) => {
      let outcome: Exit.Exit<A, E | StoreError.StoreError> | undefined
      const pending: Pending = {
        cancel: () => void (pending.cancelled = true),
        cancelled: false,
        durable,
        execute: () => {
          try {
            outcome = write()
          } catch (cause) {
            outcome = Exit.fail(onError(cause))
            throw cause
          }
        },
        succeeded: () => outcome !== undefined && Exit.isSuccess(outcome),
        finish: (cause) =>
          resume(
            cause !== undefined
              ? Exit.fail(onError(cause))
              : outcome ?? Exit.die(new Error("a queued write was committed without running"))
          )
      }
      if (alone && queue.length === 0 && !scheduled) {
        commit([pending], true)
      } else {
        queue.push(pending)
        if (!scheduled) {
          scheduled = true
          setImmediate(drain)
        }
      }
      return Effect.sync(() => pending.cancel())
    })

  return { submit, flush: drain }
}
