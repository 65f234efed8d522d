/**
 * The one attempt loop, shared by steps and compensations: run an attempt; when it fails, decide what comes
 * next (`next`, a pure rule beside `RetryPolicy.decide`), journal the failed attempt with that decision,
 * wait out the delay and go again — or give up.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Failure from "../Failure.js"
import * as RetryPolicy from "../RetryPolicy.js"
import * as Tracing from "./tracing.js"

/**
 * The retry budget in force: failed attempts the policy counted, when the first of them started, and the
 * replies that drifted from the output Schema (they have their own cap, apart from the policy's).
 */
export interface Budget {
  readonly attempts: number
  readonly startedAt: number | undefined
  readonly drifts: number
}

export const freshBudget: Budget = { attempts: 0, startedAt: undefined, drifts: 0 }

export type Next =
  | { readonly _tag: "Retry"; readonly delay: Duration.Duration; readonly failure: Failure.Failure; readonly budget: Budget }
  | { readonly _tag: "GiveUp"; readonly reason: string; readonly failure: Failure.Failure; readonly budget: Budget }

export interface Rules {
  readonly policy: RetryPolicy.RetryPolicy
  /** How many drifted replies are retried at once; `undefined`: drift is left to the policy (compensations). */
  readonly driftCap: number | undefined
}

/**
 * What follows a failed attempt. A reply that drifted from the Schema (rule `schema-drift`) is retried at
 * once up to the drift cap, apart from the policy (which is for a server that may heal); past the cap it
 * is `Deterministic`, so that a redelivery does not pay for the same drift again. Anything else is the
 * policy's decision, counting this attempt and the time since the budget's first attempt started.
 */
export const next = (
  rules: Rules,
  failure: Failure.Failure,
  budget: Budget,
  at: number,
  random: () => number
): Next => {
  if (rules.driftCap !== undefined && failure.rule === "schema-drift") {
    const drifts = budget.drifts + 1
    const counted = { ...budget, drifts }
    if (failure._tag === "Transient" && drifts <= rules.driftCap) {
      return { _tag: "Retry", delay: Duration.zero, failure, budget: counted }
    }
    const reason = `drift cap reached (${drifts} drifted replies; driftCap ${rules.driftCap})`
    return {
      _tag: "GiveUp",
      reason,
      budget: counted,
      failure: Failure.deterministic(
        `${failure.reason}; ${reason}: fix the prompt or the output Schema, then resume the run`,
        { rule: "schema-drift", ...(failure.cause !== undefined ? { cause: failure.cause } : {}) }
      )
    }
  }
  const decision = RetryPolicy.decide(rules.policy, {
    failure,
    attempt: budget.attempts + 1,
    elapsed: Duration.millis(at - (budget.startedAt ?? at)),
    random: random()
  })
  const counted = { ...budget, attempts: budget.attempts + 1 }
  return decision._tag === "Retry"
    ? { _tag: "Retry", delay: decision.delay, failure, budget: counted }
    : { _tag: "GiveUp", reason: decision.reason, failure, budget: counted }
}

/** How one attempt went. A failed one carries how to journal it once the next step is decided. */
export type Attempt<A, E> =
  | { readonly _tag: "Done"; readonly value: A }
  | {
    readonly _tag: "Failed"
    readonly failure: Failure.Failure
    readonly startedAt: number
    readonly record: (next: Next, at: number) => Effect.Effect<void, E>
  }

export type Result<A> =
  | { readonly _tag: "Done"; readonly value: A }
  | { readonly _tag: "GaveUp"; readonly failure: Failure.Failure; readonly reason: string }

/**
 * The span of each attempt: its name and the attributes it starts with (`ledgerflow.attempt` is added);
 * `traced` false makes none (see `tracing.ts`).
 */
export interface SpanOf {
  readonly traced: boolean
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
}

/**
 * Attempts numbered from `first`, under `budget` (carried over from earlier processes for the same input),
 * until one is done or the rules give up. Each attempt is a span, with the classification and rule of its
 * failure and what was decided; the backoff between attempts is outside them.
 */
export const loop = <A, E, R>(
  rules: Rules,
  first: number,
  budget: Budget,
  span: SpanOf,
  attempt: (n: number) => Effect.Effect<Attempt<A, E>, E, R>
): Effect.Effect<Result<A>, E, R> => {
  const once = (n: number, budget: Budget): Effect.Effect<Result<A> | Extract<Next, { readonly _tag: "Retry" }>, E, R> =>
    Effect.flatMap(attempt(n), (result) => {
      if (result._tag === "Done") return Effect.succeed(result)
      return Effect.flatMap(Effect.zip(Clock.currentTimeMillis, Random.next), ([at, random]) => {
        const started = budget.startedAt === undefined ? { ...budget, startedAt: result.startedAt } : budget
        const decided = next(rules, result.failure, started, at, () => random)
        return result.record(decided, at).pipe(
          Effect.zipRight(Tracing.annotate(span.traced, failureAttributes(decided))),
          Effect.as<Result<A> | Extract<Next, { readonly _tag: "Retry" }>>(
            decided._tag === "GiveUp" ? { _tag: "GaveUp", failure: decided.failure, reason: decided.reason } : decided
          )
        )
      })
    }).pipe(Tracing.span(span.traced, span.name, { attributes: { ...span.attributes, "ledgerflow.attempt": n } }))
  const go = (n: number, budget: Budget): Effect.Effect<Result<A>, E, R> =>
    Effect.flatMap(once(n, budget), (outcome) =>
      outcome._tag === "Retry"
        ? Effect.zipRight(Effect.sleep(outcome.delay), go(n + 1, outcome.budget))
        : Effect.succeed(outcome))
  return go(first, budget)
}

/** A failed attempt's span attributes: how it was classified, by which rule, and what comes next. */
const failureAttributes = (decided: Next): Record<string, unknown> => ({
  "ledgerflow.failure.class": decided.failure._tag === "Transient" ? "transient" : "deterministic",
  ...(decided.failure.rule !== undefined ? { "ledgerflow.failure.rule": decided.failure.rule } : {}),
  ...(decided._tag === "Retry"
    ? { "ledgerflow.retry.delay_ms": Duration.toMillis(decided.delay) }
    : { "ledgerflow.retry.gave_up": decided.reason })
})
