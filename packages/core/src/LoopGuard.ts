/**
 * The loop guard: a durable counter per conversation thread (or any chain of work that can feed itself),
 * with the last actors that turned it. Past its limit the chain stops with `LoopLimitExceeded` (journaled
 * as a `Deterministic`) naming who drove it — bots answering each other are stopped before they are billed.
 *
 * Two forms. Inside a pipeline use `LoopGuard.step(...)`: it is a journaled step, so a resumed or replayed
 * run does not count its turn twice. Outside a pipeline (a webhook handler deciding whether to start a
 * run at all) use `LoopGuard.check(...)`: a plain Effect that counts a turn each time it runs.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { EventStore } from "./EventStore.js"
import * as Failure from "./Failure.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as Step from "./Step.js"
import type { StoreError } from "./StoreError.js"

export interface CheckOptions {
  /** The chain's identity, e.g. a conversation thread id. */
  readonly key: string
  /** Who takes this turn, e.g. a bot's name. */
  readonly actor: string
  /** Turns allowed on this key; the turn after the limit fails. */
  readonly limit: number
  /** How many of the last actors to keep and name. Default 10. */
  readonly keepLast?: number | undefined
}

/** A turn that was allowed. */
export const Turn = Schema.Struct({
  /** This turn's number on the key, 1-based. */
  count: Schema.Number,
  /** The last actors, newest last (this turn's included). */
  actors: Schema.Array(Schema.String),
  /** Turns left before the limit. */
  remaining: Schema.Number
}).annotations({ identifier: "LoopGuard.Turn" })
export type Turn = typeof Turn.Type

const validate = (where: string, limit: number, keepLast: number | undefined): void => {
  if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`${where}: limit must be an integer >= 1, got ${limit}`)
  if (keepLast !== undefined && !(Number.isInteger(keepLast) && keepLast >= 1)) {
    throw new Error(`${where}: keepLast must be an integer >= 1, got ${keepLast}`)
  }
}

/**
 * A chain of work passed its loop limit: the turn that would have run is refused. Caught by its tag where
 * the guard is checked (`Effect.catchTag("LoopLimitExceeded", …)`); journaled (by `Failure.classify`) as a
 * `Deterministic` with rule `loop-limit`, its cause named `LoopLimitExceeded` with the key as its code.
 */
export class LoopLimitExceeded extends Schema.TaggedError<LoopLimitExceeded>()("LoopLimitExceeded", {
  /** The chain (e.g. a conversation thread) that passed its limit. */
  key: Schema.String,
  /** Turns allowed on the key. */
  limit: Schema.Number,
  /** The turn that was refused: the key's count, past `limit`. */
  actual: Schema.Number,
  /** The last actors, newest last (the refused turn's included). */
  actors: Schema.Array(Schema.String)
}) {
  /** The actors of the last turns with how many turns each took, the busiest first: who drove the chain. */
  get drivers(): string {
    const turns = new Map<string, number>()
    for (const actor of this.actors) turns.set(actor, (turns.get(actor) ?? 0) + 1)
    return [...turns].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([actor, n]) => `${actor} (${n})`).join(", ")
  }

  override get message(): string {
    return `the chain "${this.key}" reached turn ${this.actual}, past its limit of ${this.limit}; the last ${this.actors.length} turns were driven by ${this.drivers}: ${
      this.actors.join(" → ")
    }`
  }

  /** What to do: the chain is a loop to break, or a longer chain than the limit allows. */
  get hint(): string {
    return `break the loop between the actors driving chain "${this.key}", or raise the guard's limit (${this.limit}) if the chain is meant to run longer`
  }

  [Failure.toFailure](): Failure.Deterministic {
    return Failure.deterministic(`LoopLimitExceeded: ${this.message} (rule: loop-limit)`, {
      rule: "loop-limit",
      cause: new Failure.ErrorInfo({ name: "LoopLimitExceeded", message: this.message, code: this.key })
    })
  }
}

/**
 * Count one turn on `key` (atomically, across processes: the store's counter). Fails with
 * `LoopLimitExceeded` once the count passes `limit`, naming the actors of the last turns and how many
 * turns each took.
 */
export const check = (options: CheckOptions): Effect.Effect<Turn, LoopLimitExceeded | StoreError, EventStore> =>
  Effect.gen(function*() {
    validate("LoopGuard.check", options.limit, options.keepLast)
    const store = yield* EventStore
    const now = yield* Clock.currentTimeMillis
    const { actors, count } = yield* store.incrementCounter({
      key: options.key,
      actor: options.actor,
      keepLast: options.keepLast ?? 10,
      now
    })
    if (count <= options.limit) return { count, actors, remaining: options.limit - count }
    return yield* new LoopLimitExceeded({ key: options.key, limit: options.limit, actual: count, actors })
  })

/** The input of `LoopGuard.step`: the chain and who takes this turn. */
export const TurnRequest = Schema.Struct({ key: Schema.String, actor: Schema.String })
  .annotations({ identifier: "LoopGuard.TurnRequest" })
export type TurnRequest = typeof TurnRequest.Type

/**
 * The guard as a journaled step for use inside a pipeline: `yield* guard({ key: threadId, actor })`. Its
 * turn is counted once per run, not once per resume or replay; past the limit the run fails
 * deterministically (and a redelivery of it gets that failure back without counting again). The step's
 * body fails with `LoopLimitExceeded`; the run's log and `Engine.run` carry it as its `Deterministic`.
 */
export const step = (options: {
  readonly name?: string | undefined
  readonly limit: number
  readonly keepLast?: number | undefined
}): Step.Step<TurnRequest, Turn, LoopLimitExceeded | StoreError, EventStore> => {
  validate("LoopGuard.step", options.limit, options.keepLast)
  return Step.make({
    name: options.name ?? "loop-guard",
    input: TurnRequest,
    output: Turn,
    // A busy store is retried by the default policy; a limit passed is Deterministic and never is.
    retry: RetryPolicy.defaultPolicy,
    run: ({ actor, key }) => check({ key, actor, limit: options.limit, keepLast: options.keepLast })
  })
}
