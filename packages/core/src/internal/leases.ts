/**
 * The leases an engine holds, kept alive by one keeper fiber: every `leaseMs / 3` it renews them all at once
 * (the store's writer commits the renewals of one tick together). A run whose renewal is refused — another
 * worker took it over, or the store failed — is told why (`Holder.lost`) and its program is interrupted:
 * nothing after it runs, and its late appends would be refused by the fencing token anyway.
 *
 * One keeper per engine instead of one timer fiber raced against each run: a run only registers itself.
 * With no run held the keeper waits on a latch, so an idle engine sets no timers.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type { EventStoreService } from "../EventStore.js"
import type { LeaseLost, StoreError } from "../StoreError.js"

/** A run whose lease is kept: told when it was renewed, or that it was lost (its execution must stop). */
export interface Holder {
  readonly runId: string
  readonly token: number
  readonly renewed: (leaseExpiresAt: number) => void
  readonly lost: (error: LeaseLost | StoreError) => void
}

export class Leases {
  private readonly held = new Map<Holder, Fiber.RuntimeFiber<unknown, unknown>>()
  /** Open while some run holds a lease: an idle engine's keeper sleeps on it instead of ticking. */
  private readonly busy = Effect.unsafeMakeLatch(false)
  private keeping = false
  /** Start the keeper in the engine layer's scope: it runs until that scope closes. */
  readonly keep: Effect.Effect<void, never, Scope.Scope>

  constructor(private readonly store: EventStoreService, private readonly leaseMs: number) {
    this.keep = Effect.suspend(() => {
      this.keeping = true
      return Effect.zipRight(
        Effect.addFinalizer(() => Effect.sync(() => void (this.keeping = false))),
        Effect.forkScoped(this.tick(() => true))
      )
    })
  }

  /** Whether no run but `holder` (if given) holds a lease here: nothing else of this engine is about to write. */
  alone(holder?: Holder): boolean {
    return this.held.size === (holder !== undefined && this.held.has(holder) ? 1 : 0)
  }

  /**
   * Run `program` (a run's pipeline code) in a fiber of its own while its lease is kept; its exit. When the
   * lease is lost the fiber is interrupted and `holder.lost` is told why.
   */
  hold<A, E, R>(holder: Holder, program: Effect.Effect<A, E, R>) {
    const held = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(program)), (fiber) => {
        this.held.set(holder, fiber)
        this.busy.unsafeOpen()
        return restore(Fiber.await(fiber)).pipe(Effect.ensuring(Effect.sync(() => this.release(holder))))
      })
    )
    return Effect.suspend(() =>
      this.keeping
        ? held
        // The engine is used outside its layer's scope, where its keeper stopped: this run keeps its own lease.
        : Effect.scoped(Effect.zipRight(Effect.forkScoped(this.tick((r) => r === holder)), held))
    )
  }

  private release(holder: Holder) {
    this.held.delete(holder)
    if (this.held.size === 0) this.busy.unsafeClose()
  }

  /** While some run holds a lease, every third of the lease, renew the held leases that `which` picks. */
  private tick(which: (holder: Holder) => boolean): Effect.Effect<never> {
    return this.busy.await.pipe(
      Effect.zipRight(Effect.sleep(Duration.millis(this.leaseMs / 3))),
      Effect.zipRight(this.renew(which)),
      Effect.forever
    )
  }

  /** Renew the held leases that `which` picks; a refused one stops its run. */
  private renew(which: (holder: Holder) => boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      const due = [...this.held].filter(([holder]) => which(holder))
      if (due.length === 0) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const leaseExpiresAt = now + this.leaseMs
        return Effect.forEach(
          due,
          ([holder, fiber]) =>
            this.store.renew({ runId: holder.runId, token: holder.token, now, leaseExpiresAt }).pipe(
              Effect.matchEffect({
                onSuccess: () => Effect.sync(() => holder.renewed(leaseExpiresAt)),
                onFailure: (error) => {
                  holder.lost(error)
                  this.release(holder)
                  return Fiber.interruptFork(fiber)
                }
              })
            ),
          { concurrency: "unbounded", discard: true }
        )
      })
    })
  }
}
