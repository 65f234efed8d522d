/**
 * A start by key (`Engine.run`): one delivery of its key. A key without a run creates it and executes it;
 * a key with a run is answered by `decideStart` — its stored outcome, a takeover, a wait, a refusal.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type { RunError, RunOptions } from "../Engine.js"
import * as Event from "../Event.js"
import type { RunRecord } from "../EventStore.js"
import * as Journal from "../Journal.js"
import type * as Pipeline from "../Pipeline.js"
import type { RunContext } from "../RunContext.js"
import { InvalidInput, KeyConflict, validateKey } from "../RunError.js"
import { decideStart } from "./admission.js"
import * as Breaker from "./breaker.js"
import { type Core, inProgress, newRunId, notResumable, readState, stored, waitForLease } from "./core.js"
import { redeliver } from "./delivery.js"
import { execute, takeOver } from "./executeRun.js"
import { rollback } from "./existing.js"
import { hashJson, toJson } from "./hash.js"
import { leaseLapsed } from "./owner.js"

export const run = <I, O, E, R>(
  core: Core,
  pipeline: Pipeline.Pipeline<I, O, E, R>,
  input: I,
  options: RunOptions = {}
): Effect.Effect<O, RunError, Exclude<R, RunContext>> =>
  Effect.gen(function*() {
    const encoded = pipeline.codec.encodeInput(input)
    if (Either.isLeft(encoded)) {
      return yield* Effect.fail(
        new InvalidInput({
          pipeline: pipeline.name,
          message: `the input of pipeline ${pipeline.name} does not match its Schema:\n${
            ParseResult.TreeFormatter.formatErrorSync(encoded.left)
          }`
        })
      )
    }
    const inputHash = hashJson(toJson(encoded.right))
    const key = options.key ?? inputHash
    const invalidKey = validateKey(key)
    if (invalidKey !== undefined) return yield* Effect.fail(invalidKey)
    // This start is one delivery of its key: counted once, however long it waits for a running run.
    let delivered = false
    // The run a lost claim returned (another worker created it first), this delivery counted on it: decided
    // on as the store returned it, not read again.
    let claimed: RunRecord | undefined
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const found = claimed ?? Option.getOrUndefined(yield* core.store.findByKey(pipeline.name, key))
      claimed = undefined
      // A key that has a run (a redelivery) is answered from it: one read, and one small write counting it.
      const existing = found === undefined
        ? undefined
        : delivered
        ? found
        : yield* redeliver(core.store, found, now)
      if (existing !== undefined) delivered = true
      // A chosen key is bound to its first input (a derived key is the input's hash: it cannot differ).
      const known = existing === undefined || options.key === undefined ? undefined : yield* readState(core, existing.runId)
      const held = existing?.status === "running" || existing?.status === "compensating"
      const decision = decideStart({
        existing,
        storedInputHash: known?.started?.inputHash,
        inputHash,
        lapse: held && existing !== undefined ? leaseLapsed(existing, now) : undefined,
        ifRunning: options.ifRunning ?? "fail",
        owner: core.owner
      })
      if (decision._tag === "Create") {
        // Only a run that does not exist yet is refused by the breaker: an existing key still returns its outcome.
        yield* Breaker.check(core, pipeline)
        const created = yield* claim(core, pipeline, key, encoded.right, inputHash, options, now)
        if (created._tag === "Created") {
          return yield* execute(core, pipeline, input, created.run, Journal.empty, { budget: options.budget })
        }
        // Another worker created it since the lookup; the claim counted this delivery. Decide on its run.
        claimed = created.run
        delivered = true
        continue
      }
      // decideStart creates only for a key without a run: past this point there is one.
      if (existing === undefined) continue
      switch (decision._tag) {
        case "Return":
          return yield* stored(core, pipeline, existing, known)
        case "Conflict":
          return yield* Effect.fail(keyConflict(pipeline, existing, decision.storedInputHash, inputHash))
        case "TakeOver":
          return yield* takeOver(core, pipeline, existing, {
            reason: decision.reason,
            requireExpired: decision.requireExpired,
            budget: options.budget
          })
        case "FinishRollback":
          // Its worker died while undoing it: finish the rollback.
          yield* rollback(core, pipeline, existing.runId)
          continue
        case "Wait":
          yield* waitForLease(core, existing, now)
          continue
        case "InProgress":
          return yield* Effect.fail(inProgress(existing))
        case "NotResumable":
          return yield* Effect.fail(notResumable(existing))
      }
    }
  })

/** Create the run (its start and lease journaled with it), unless another worker created it first. */
const claim = (
  core: Core,
  pipeline: Pipeline.Any,
  key: string,
  input: unknown,
  inputHash: string,
  options: RunOptions,
  now: number
) => {
  const runId = newRunId(now)
  const expiresAt = now + core.leaseMs
  return core.store.claim({
    runId,
    pipeline: pipeline.name,
    version: pipeline.version,
    key,
    owner: core.owner,
    now,
    leaseExpiresAt: expiresAt,
    parentRunId: options.parentRunId,
    correlationId: options.correlationId,
    alone: core.leases.alone(),
    events: [
      Event.encode(
        Event.make(Event.RunStarted, {
          at: now,
          pipeline: pipeline.name,
          version: pipeline.version,
          key,
          input,
          inputHash,
          ...(options.parentRunId !== undefined ? { parentRunId: options.parentRunId } : {}),
          ...(options.correlationId !== undefined ? { correlationId: options.correlationId } : {})
        })
      ),
      Event.encode(Event.make(Event.LeaseTaken, { at: now, owner: core.owner, token: 1, expiresAt }))
    ]
  })
}

const keyConflict = (pipeline: { readonly name: string }, run: RunRecord, storedInputHash: string, inputHash: string) =>
  new KeyConflict({
    pipeline: pipeline.name,
    key: run.key,
    runId: run.runId,
    storedInputHash,
    inputHash,
    message:
      `the key ${JSON.stringify(run.key)} of pipeline ${pipeline.name} belongs to run ${run.runId}, started with another input (hash ${storedInputHash}, this start's ${inputHash}); nothing was executed. Use a new key for this input, or start the run's own input again to get its outcome`
  })
