/**
 * Callers waiting for a run to change, woken by the writes of this process that may have changed it (a
 * status, a lease given up). Each store keeps one set; a store that also hears other processes' writes
 * (Postgres's LISTEN) wakes the same set.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { RunRecord } from "../EventStore.js"

export interface WaitOptions<E> {
  readonly runId: string
  readonly atMost: Duration.DurationInput
  /**
   * Reads the run (undefined: no such run). Read once the wait is registered: a run no longer held under
   * a live lease returns at once, so a change between the caller's read and this wait is never missed. A
   * failed read returns at once too (the caller reads again and meets the failure itself).
   */
  readonly current: Effect.Effect<Pick<RunRecord, "status" | "leaseExpiresAt"> | undefined, E>
  /**
   * Read the run again this often while waiting: for a store whose other writers do not wake this process
   * (another process on one SQLite file). Default: only at the start.
   */
  readonly recheckEvery?: Duration.DurationInput | undefined
}

export interface RunWaiters {
  /** Wait until `wake(runId)` (or `wakeAll`), the run found no longer held, or `atMost`. */
  readonly wait: <E>(options: WaitOptions<E>) => Effect.Effect<void>
  /** After a committed write that changed the run's status or gave its lease up. */
  readonly wake: (runId: string) => void
  /** Wake every waiter: a store that may have missed changes (its listening connection was lost). */
  readonly wakeAll: () => void
}

/** Held: another worker may still be writing it, and nothing but its own write or its lease's end changes that. */
export const held = (run: Pick<RunRecord, "status" | "leaseExpiresAt">, now: number): boolean =>
  (run.status === "running" || run.status === "compensating") && run.leaseExpiresAt > now

export const make = (): RunWaiters => {
  const waiting = new Map<string, Set<() => void>>()

  const wake = (runId: string) => {
    const wakers = waiting.get(runId)
    if (wakers === undefined) return
    waiting.delete(runId)
    for (const waker of wakers) waker()
  }

  const wakeAll = () => {
    for (const runId of [...waiting.keys()]) wake(runId)
  }

  const wait = <E>({ atMost, current, recheckEvery, runId }: WaitOptions<E>): Effect.Effect<void> =>
    Effect.flatMap(Deferred.make<void>(), (woken) => {
      const waker = () => Deferred.unsafeDone(woken, Exit.void)
      const unregister = Effect.sync(() => {
        const wakers = waiting.get(runId)
        wakers?.delete(waker)
        if (wakers?.size === 0) waiting.delete(runId)
      })
      const recheckMs = recheckEvery === undefined ? Infinity : Duration.toMillis(Duration.decode(recheckEvery))
      return Effect.gen(function*() {
        const wakers = waiting.get(runId) ?? new Set()
        wakers.add(waker)
        waiting.set(runId, wakers)
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(Duration.decode(atMost))
        while (true) {
          const run = yield* Effect.orElseSucceed(current, () => undefined)
          const now = yield* Clock.currentTimeMillis
          if (run === undefined || !held(run, now) || now >= deadline) return
          const pause = Duration.millis(Math.min(deadline - now, recheckMs))
          const isWoken = yield* Effect.race(Effect.as(Deferred.await(woken), true), Effect.as(Effect.sleep(pause), false))
          if (isWoken) return
        }
      }).pipe(Effect.ensuring(unregister))
    })

  return { wait, wake, wakeAll }
}
