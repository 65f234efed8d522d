/**
 * Admission: what a start by key does with the run the key already has — a pure rule over what the store
 * said, like `RetryPolicy.decide`. The engine carries the decision out (and asks again after a wait or a
 * finished rollback).
 */
import type { RunRecord } from "../EventStore.js"
import type { Lapse } from "./owner.js"

export interface StartFacts {
  /** The run this key belongs to, if any. */
  readonly existing: RunRecord | undefined
  /** The input hash the run was started with, when the key was chosen by the caller (else it is the hash). */
  readonly storedInputHash: string | undefined
  /** This start's input hash. */
  readonly inputHash: string
  /** Why the existing run's lease no longer holds, if it does not (only read for a held run). */
  readonly lapse: Lapse | undefined
  readonly ifRunning: "fail" | "wait"
  /** This worker's name, for the takeover's reason. */
  readonly owner: string
}

export type Decision =
  /** No run has the key: create it (after the storm breaker's check). */
  | { readonly _tag: "Create" }
  /** Answer from the stored outcome: its output, or its deterministic failure. Nothing runs. */
  | { readonly _tag: "Return" }
  /** The key is bound to another input: refuse, nothing runs. */
  | { readonly _tag: "Conflict"; readonly storedInputHash: string }
  /** Take the run over and execute it from its journal (`requireExpired`: the store checks the lease ran out). */
  | { readonly _tag: "TakeOver"; readonly reason: string; readonly requireExpired: boolean }
  /** Its worker died while undoing: finish the rollback, then decide again. */
  | { readonly _tag: "FinishRollback" }
  /** A live worker holds the run and the caller waits: wait, then decide again. */
  | { readonly _tag: "Wait" }
  /** A live worker holds the run and the caller does not wait. */
  | { readonly _tag: "InProgress" }
  /** The run needs a person (or was cancelled): a start by key cannot continue it. */
  | { readonly _tag: "NotResumable" }

export const decideStart = (facts: StartFacts): Decision => {
  const run = facts.existing
  if (run === undefined) return { _tag: "Create" }
  if (facts.storedInputHash !== undefined && facts.storedInputHash !== facts.inputHash) {
    return { _tag: "Conflict", storedInputHash: facts.storedInputHash }
  }
  switch (run.status) {
    case "completed":
      return { _tag: "Return" }
    case "failed":
    case "rolled_back":
      // A deterministic failure is returned as stored: redelivering the same work cannot fix it.
      if (run.failureClass === "deterministic") return { _tag: "Return" }
      return {
        _tag: "TakeOver",
        requireExpired: false,
        reason: run.status === "failed"
          ? "started again after its retries were exhausted on a transient failure"
          : "started again after a rollback: undone steps run again, kept outputs are served"
      }
    case "compensating":
      return facts.lapse === undefined ? { _tag: "InProgress" } : { _tag: "FinishRollback" }
    case "running":
      if (facts.lapse !== undefined) {
        return {
          _tag: "TakeOver",
          requireExpired: facts.lapse.timedOut,
          reason: `${facts.lapse.why}; taken over by ${facts.owner}`
        }
      }
      return facts.ifRunning === "wait" ? { _tag: "Wait" } : { _tag: "InProgress" }
    case "needs_attention":
    case "cancelled":
      return { _tag: "NotResumable" }
  }
}
