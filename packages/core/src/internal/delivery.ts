/**
 * Deliveries: every start by key is one, counted on its run (DESIGN, "Runs, keys and concurrency"). A start
 * that finds its run answers from the stored outcome when nothing is to be executed; then the store also
 * journals `RunRedelivered`, which the cost ledger counts as what the redelivery did not pay again.
 */
import type * as Effect from "effect/Effect"
import * as Event from "../Event.js"
import type { EventStoreService, RunRecord } from "../EventStore.js"
import type { StoreError } from "../StoreError.js"

/**
 * Whether a start by key that finds `run` is answered from what is stored, executing nothing: a completed
 * run (its output), a deterministic failure (the failure), a run needing attention or cancelled (a refusal).
 * A transient failure is resumed, a running run is waited for or refused: neither is an answer.
 */
export const answeredFromStore = (run: RunRecord): boolean => {
  switch (run.status) {
    case "completed":
    case "needs_attention":
    case "cancelled":
      return true
    case "failed":
    case "rolled_back":
      return run.failureClass === "deterministic"
    case "running":
    case "compensating":
      return false
  }
}

/** Count a redelivery on the run found by key; the run as the store has it after the count. */
export const redeliver = (store: EventStoreService, run: RunRecord, now: number): Effect.Effect<RunRecord, StoreError> =>
  store.deliver({
    runId: run.runId,
    now,
    answered: answeredFromStore(run) ? [Event.encode(Event.make(Event.RunRedelivered, { at: now }))] : undefined
  })
