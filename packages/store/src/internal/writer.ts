/**
 * The hot path's single writer. Writes queue in an array; one drain, scheduled once the fibers that can
 * run have run (`setImmediate`), commits everything queued in one native `BEGIN IMMEDIATE` transaction. A
 * write that throws is rolled back alone: the batch is then run again with each write in its own SAVEPOINT.
 *
 * A write submitted `alone` (nothing else of this process is about to write) while nothing is queued is
 * committed at once, in the caller's fiber: no batch could form, so the hop to a later drain would only
 * add latency (~40 µs a step, measured on sequential runs).
 *
 * Durability: commits reach the WAL without a flush; with a `WalSync` (a store opened `synchronous: "full"`)
 * a batch holding a durable write is flushed before its callers resume: one flush per batch.
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
  /** Its caller went away: skip it if not yet committed. */
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

  // Called alone, `one` is a BEGIN IMMEDIATE transaction; called inside `isolated`, a SAVEPOINT.
  const one = db.transaction((pending: Pending) => pending.execute())
  // A batch is first tried as plain writes in one transaction: writes throw only on a bug or a failing disk,
  // and the SAVEPOINT and RELEASE statements around each write cost ~3–8 µs a write (raw better-sqlite3,
  // batches of 16 step appends: 17–23 µs of CPU a write with them, 13–21 without).
  let writeThrew = false
  const together = db.transaction((batch: ReadonlyArray<Pending>) => {
    for (const pending of batch) {
      try {
        pending.execute()
      } catch (cause) {
        writeThrew = true
        throw cause
      }
    }
  })
  // When a write threw, that transaction was rolled back whole and the batch runs again, each write in its
  // own SAVEPOINT, so that only the write that throws is rolled back. The writes are re-run from the database
  // as it was (a write's outcome is computed from the rows it reads), so nothing of the first try remains.
  // A failure of BEGIN or COMMIT itself (the lock held past the busy timeout, the disk) fails the batch at
  // once, as before: a second try would only wait out the busy timeout again.
  const isolated = db.transaction((batch: ReadonlyArray<Pending>) => {
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

  /** Commit a batch in one transaction (flushed when it holds a durable write), then resume each caller. */
  const commit = (batch: ReadonlyArray<Pending>) => {
    try {
      if (batch.length === 1) one.immediate(batch[0]!)
      else {
        try {
          together.immediate(batch)
        } catch (cause) {
          if (!writeThrew) throw cause
          writeThrew = false
          isolated.immediate(batch)
        }
      }
    } catch (cause) {
      for (const pending of batch) pending.finish(cause)
      return
    }
    try {
      walSync?.committed(batch.some((pending) => pending.durable))
    } catch (cause) {
      // Committed but not known durable: the durable writes fail; the others stand (they can be rebuilt).
      for (const pending of batch) pending.finish(pending.durable && pending.succeeded() ? cause : undefined)
      return
    }
    for (const pending of batch) pending.finish()
  }

  const drain = () => {
    scheduled = false
    const batch = queue.filter((pending) => !pending.cancelled)
    queue = []
    if (batch.length > 0) commit(batch)
  }

  const submit = <A, E>(
    write: () => Exit.Exit<A, E>,
    onError: (cause: unknown) => StoreError.StoreError,
    { alone = false, durable = true }: SubmitOptions = {}
  ): Effect.Effect<A, E | StoreError.StoreError> =>
    Effect.suspend(() => {
      let outcome: Exit.Exit<A, E | StoreError.StoreError> | undefined
      let resume: (exit: Exit.Exit<A, E | StoreError.StoreError>) => void = () => {}
      const pending: Pending = {
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
        // Committed (and flushed) before this returns: the caller's fiber goes on with the outcome, without
        // suspending on a callback.
        let result: Exit.Exit<A, E | StoreError.StoreError> | undefined
        resume = (exit) => void (result = exit)
        commit([pending])
        return result ?? Exit.die(new Error("a write committed at once did not finish"))
      }
      return Effect.async<A, E | StoreError.StoreError>((callback) => {
        resume = callback
        queue.push(pending)
        if (!scheduled) {
          scheduled = true
          setImmediate(drain)
        }
        return Effect.sync(() => void (pending.cancelled = true))
      })
    })

  return { submit, flush: drain }
}
