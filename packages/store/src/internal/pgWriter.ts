/**
 * The Postgres store's writer: group commit. Writes queue while a batch is on its way; the next batch takes
 * everything queued and commits it in one transaction on one pooled connection, so 16 concurrent runs'
 * appends share one commit (one WAL flush) instead of paying one each. A write states its outcome as an
 * Exit (a refused fencing token is an outcome, not an exception), so one run's refusal never rolls back
 * another's append. When a statement throws, the batch is rolled back and each of its writes runs again in
 * a transaction of its own: only the write that throws fails.
 *
 * Writes lock their run's row; a batch runs them ordered by the row they lock, so two processes' batches
 * take their locks in one order and do not deadlock each other.
 *
 * Durability: a batch of only rebuildable writes (claims, renewals, completions: `durable: false`) commits
 * with `synchronous_commit = off`, becoming durable with the server's next flush.
 */
import type { StoreError } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type pg from "pg"

export interface SubmitOptions {
  /** False for a write the engine can rebuild; it may commit without waiting for the WAL flush. Default true. */
  readonly durable?: boolean | undefined
}

export interface Writer {
  /**
   * Run `write` inside a transaction. Its expected outcomes are an Exit (a failed Exit must have written
   * nothing); a rejected promise fails the caller with `onError(rejection)`. `lock` names the row the
   * write locks (its run, its key), to order a batch.
   */
  readonly submit: <A, E>(
    lock: string,
    write: (client: pg.ClientBase) => Promise<Exit.Exit<A, E>>,
    onError: (cause: unknown) => StoreError.StoreError,
    options?: SubmitOptions
  ) => Effect.Effect<A, E | StoreError.StoreError>
  /** Resolves when nothing is queued nor on its way (when the store closes). */
  readonly drained: () => Promise<void>
}

interface Pending {
  readonly lock: string
  readonly durable: boolean
  /** Its caller went away before the write started: skip it. */
  cancelled: boolean
  readonly execute: (client: pg.ClientBase) => Promise<void>
  /** Resume the caller with the write's outcome, or with `cause` when its transaction failed. */
  readonly finish: (cause?: unknown) => void
}

/** A batch larger than this waits for the next commit: a long transaction holds its rows' locks longer. */
const maxBatch = 64

export const make = (pool: pg.Pool): Writer => {
  let queue: Array<Pending> = []
  let running = false
  let idle: Array<() => void> = []

  const transaction = async (client: pg.ClientBase, batch: ReadonlyArray<Pending>) => {
    await client.query("BEGIN")
    try {
      if (!batch.some((pending) => pending.durable)) await client.query("SET LOCAL synchronous_commit = off")
      for (const pending of batch) await pending.execute(client)
      await client.query("COMMIT")
    } catch (cause) {
      await client.query("ROLLBACK").catch(() => undefined)
      throw cause
    }
  }

  const commit = async (batch: ReadonlyArray<Pending>) => {
    let client: pg.PoolClient
    try {
      client = await pool.connect()
    } catch (cause) {
      for (const pending of batch) pending.finish(cause)
      return
    }
    let broken: unknown
    try {
      try {
        await transaction(client, batch)
        for (const pending of batch) pending.finish()
        return
      } catch (cause) {
        if (batch.length === 1 || isConnectionLost(cause)) throw cause
      }
      // One write threw: run each again in its own transaction, so that only that write fails.
      for (const pending of batch) {
        try {
          await transaction(client, [pending])
          pending.finish()
        } catch (cause) {
          pending.finish(cause)
          if (isConnectionLost(cause)) broken = cause
          if (broken !== undefined) break
        }
      }
      if (broken !== undefined) {
        for (const pending of batch) pending.finish(broken)
      }
    } catch (cause) {
      broken = cause
      for (const pending of batch) pending.finish(cause)
    } finally {
      // A connection that failed is dropped from the pool rather than handed to the next batch.
      client.release(broken instanceof Error ? broken : undefined)
    }
  }

  const drain = async () => {
    running = true
    try {
      while (true) {
        const ready = queue.filter((pending) => !pending.cancelled)
        if (ready.length === 0) break
        const batch = ready.slice(0, maxBatch)
        queue = ready.slice(maxBatch)
        // Stable: one run's writes keep their order.
        batch.sort((a, b) => (a.lock < b.lock ? -1 : a.lock > b.lock ? 1 : 0))
        await commit(batch)
      }
    } finally {
      running = false
      const waiting = idle
      idle = []
      for (const resolve of waiting) resolve()
    }
  }

  const submit = <A, E>(
    lock: string,
    write: (client: pg.ClientBase) => Promise<Exit.Exit<A, E>>,
    onError: (cause: unknown) => StoreError.StoreError,
    { durable = true }: SubmitOptions = {}
  ): Effect.Effect<A, E | StoreError.StoreError> =>
    Effect.async<A, E | StoreError.StoreError>((resume) => {
      let outcome: Exit.Exit<A, E> | undefined
      let done = false
      const pending: Pending = {
        lock,
        durable,
        cancelled: false,
        execute: async (client) => {
          outcome = await write(client)
        },
        finish: (cause) => {
          if (done) return
          done = true
          resume(
            cause !== undefined
              ? Exit.fail(onError(cause))
              : outcome ?? Exit.die(new Error("a queued write was committed without running"))
          )
        }
      }
      queue.push(pending)
      if (!running) void drain()
      return Effect.sync(() => void (pending.cancelled = true))
    })

  const drained = () => (running ? new Promise<void>((resolve) => idle.push(resolve)) : Promise.resolve())

  return { submit, drained }
}

/** The connection itself failed: nothing more can run on it. */
const isConnectionLost = (cause: unknown): boolean => {
  const code = typeof cause === "object" && cause !== null ? Reflect.get(cause, "code") : undefined
  const message = cause instanceof Error ? cause.message : ""
  return (typeof code === "string" && (code.startsWith("08") || code === "57P01" || code.startsWith("E"))) ||
    /Connection terminated|not queryable|Client has encountered a connection error/i.test(message)
}
