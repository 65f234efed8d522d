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
import type * as Journal from "../Journal.js"
import * as RetryPolicy from "../RetryPolicy.js"
import * as Tracing from "./tracing.js"

/**
 * The retry budget in force: failed attempts the policy counted, when the first of them started, and the
 * replies that drifted from the output Schema (they have their own cap, apart from the policy's).
 */
export type Budget = Journal.StepEntry["budget"]

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
const next = (
  rules: Rules,
  failure: Failure.Failure,
  budget: Budget,
  at: number,
  random: number
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
    random
  })
  const counted = { ...budget, attempts: budget.attempts + 1 }
  return decision._tag === "Retry"
    ? { _tag: "Retry", delay: decision.delay, failure, budget: counted }
    : { _tag: "GiveUp", reason: decision.reason, failure, budget: counted }
}

/** A failed attempt, and how to journal it once what comes next is decided. */
export interface Failed<E> {
  readonly failure: Failure.Failure
  readonly startedAt: number
  readonly record: (next: Next, at: number) => Effect.Effect<void, E>
}

/**
 * One attempt, numbered `n`, made when this is called (the call is the attempt's start: it reads the clock
 * and may check a budget). It ends in its value when it succeeds; when it fails, it continues with
 * `failed`, whose effect is the attempt's (so a failed attempt costs no effect of the loop's on the way).
 */
export type AttemptOnce<A, E, R> = <B, E2>(
  n: number,
  failed: (failed: Failed<E>) => Effect.Effect<B, E2, R>
) => Effect.Effect<A | B, E | E2, R>

/**
 * The span of each attempt: its name and the attributes it starts with (`ledgerflow.attempt` is added);
 * `traced` false makes none (see `tracing.ts`).
 */
export interface SpanOf {
  readonly traced: boolean
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
}

/** A traced attempt that failed and what was decided, handed out of its span. */
class Decided {
  constructor(readonly next: Next) {}
}

/**
 * Attempts numbered from `first`, under `budget` (carried over from earlier processes for the same input),
 * until one is done (its value) or the rules give up (`gaveUp`'s effect). Built when it starts: the first
 * attempt is made when this is called, each next one when its backoff has passed. Each attempt is a span
 * when traced, with the classification and rule of its failure and what was decided; the backoff between
 * attempts is outside them. Untraced, an attempt that succeeds adds no effect of its own.
 */
export const loop = <A, E, R, E2>(
  rules: Rules,
  first: number,
  budget: Budget,
  span: SpanOf,
  attempt: AttemptOnce<A, E, R>,
  gaveUp: (failure: Failure.Failure, reason: string) => Effect.Effect<A, E2>
): Effect.Effect<A, E | E2, R> => {
  /** Decide what follows a failed attempt, and journal the attempt with that decision. */
  const decide = (budget: Budget, failed: Failed<E>) =>
    Effect.flatMap(Effect.zip(Clock.currentTimeMillis, Random.next), ([at, random]) => {
      const started = budget.startedAt === undefined ? { ...budget, startedAt: failed.startedAt } : budget
      const decided = next(rules, failed.failure, started, at, random)
      return failed.record(decided, at).pipe(
        Effect.zipRight(Tracing.annotate(span.traced, failureAttributes(decided))),
        Effect.as(decided)
      )
    })
  const then = (n: number, decided: Next): Effect.Effect<A, E | E2, R> =>
    decided._tag === "Retry"
      ? Effect.flatMap(Effect.sleep(decided.delay), () => go(n + 1, decided.budget))
      : gaveUp(decided.failure, decided.reason)
  const go = (n: number, budget: Budget): Effect.Effect<A, E | E2, R> => {
    if (!span.traced) return attempt(n, (failed) => Effect.flatMap(decide(budget, failed), (d) => then(n, d)))
    const traced = attempt(n, (failed) => Effect.map(decide(budget, failed), (d) => new Decided(d))).pipe(
      Tracing.span(true, span.name, { attributes: { ...span.attributes, "ledgerflow.attempt": n } })
    )
    return Effect.flatMap(traced, (outcome) => outcome instanceof Decided ? then(n, outcome.next) : Effect.succeed(outcome))
  }
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
