/**
 * Retry policies: exponential backoff with jitter, capped in attempts, delay and total elapsed time, that
 * only ever retries a `Transient` and never sooner than the server's `retryAfter`.
 *
 * `schedule` gives it as an Effect `Schedule` for `Effect.retry`; `decide` gives the same decision as a pure
 * function of (attempt, elapsed), because the engine must carry those across processes (a crash must not
 * reset them) and a `Schedule` keeps its state in memory only.
 */
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import type { Failure } from "./Failure.js"

/** How to retry a step's `Transient` failures. Build one with `exponential`. */
export interface RetryPolicy {
  /** The first delay. */
  readonly base: Duration.Duration
  /** Each delay is the previous one times `factor` (>= 1). */
  readonly factor: number
  /** No backoff delay exceeds this (a server's `retryAfter` may: see `decide`). */
  readonly maxDelay: Duration.Duration
  /** Attempts in all, the first included (>= 1; `Infinity` for no cap, leaving `maxElapsed` to bound it). */
  readonly maxAttempts: number
  /** Time from the first attempt's start past which no retry is scheduled. */
  readonly maxElapsed: Duration.Duration
  /** 0..1: the fraction of each delay that is randomised (0.2 → ±10%). */
  readonly jitter: number
}

/**
 * An exponential backoff policy. Options are checked here, and a bad value throws an `Error` naming the
 * option: policies are defined at module load beside the steps that use them (like `Schedule`
 * constructors), so a typo fails at once, not on the first failure in production.
 *
 * - `base`, `maxDelay`, `maxElapsed`: non-negative durations (`maxDelay`, `maxElapsed` may be infinite);
 * - `factor` (default 2): a finite number >= 1;
 * - `maxAttempts`: an integer >= 1, or `Infinity`;
 * - `jitter` (default 0.2): a number in 0..1.
 */
export const exponential = (options: {
  readonly base: Duration.DurationInput
  readonly factor?: number
  readonly maxDelay: Duration.DurationInput
  readonly maxAttempts: number
  readonly maxElapsed: Duration.DurationInput
  readonly jitter?: number
}): RetryPolicy => {
  const base = durationOption("base", options.base)
  if (!Duration.isFinite(base)) invalid("base", options.base, "a finite duration")
  const factor = options.factor ?? 2
  if (!(Number.isFinite(factor) && factor >= 1)) invalid("factor", factor, "a finite number >= 1")
  const maxAttempts = options.maxAttempts
  if (!(maxAttempts === Infinity || (Number.isInteger(maxAttempts) && maxAttempts >= 1))) {
    invalid("maxAttempts", maxAttempts, "an integer >= 1 (or Infinity)")
  }
  const jitter = options.jitter ?? 0.2
  if (!(jitter >= 0 && jitter <= 1)) invalid("jitter", jitter, "a number in 0..1")
  return {
    base,
    factor,
    maxDelay: durationOption("maxDelay", options.maxDelay),
    maxAttempts,
    maxElapsed: durationOption("maxElapsed", options.maxElapsed),
    jitter
  }
}

/** One attempt, never retried. */
export const none: RetryPolicy = exponential({ base: 0, maxDelay: 0, maxAttempts: 1, maxElapsed: 0, jitter: 0 })

/** 200 millis doubling up to 30 seconds, ±10% jitter, at most 5 attempts within 5 minutes. */
export const defaultPolicy: RetryPolicy = exponential({
  base: "200 millis",
  factor: 2,
  maxDelay: "30 seconds",
  maxAttempts: 5,
  maxElapsed: "5 minutes",
  jitter: 0.2
})

/** Retry after `delay`, or give up (the reason says which cap fired). */
export type Decision =
  | { readonly _tag: "Retry"; readonly delay: Duration.Duration }
  | { readonly _tag: "GiveUp"; readonly reason: string }

/**
 * Decide what follows a failed attempt.
 *
 * - a `Deterministic` is never retried;
 * - `attempt` (1-based, the attempt that just failed included) reaching `maxAttempts` gives up;
 * - the delay is `min(base * factor^(attempt-1), maxDelay)`, jittered by ±`jitter`/2 of itself (`random`
 *   in [0, 1) picks where) yet never above `maxDelay`;
 * - then never sooner than the failure's `retryAfter`: the server's hint wins over `maxDelay`…
 * - …but not over `maxElapsed`: when `elapsed` (since the step's first attempt started, across processes)
 *   plus the delay would pass it, give up now rather than sleep towards a retry that may not happen.
 */
export const decide = (
  policy: RetryPolicy,
  input: {
    readonly failure: Failure
    readonly attempt: number
    readonly elapsed: Duration.DurationInput
    readonly random: number
  }
): Decision => {
  const { attempt, failure, random } = input
  if (failure._tag === "Deterministic") {
    return giveUp(`a deterministic failure is never retried (${failure.reason})`)
  }
  if (attempt >= policy.maxAttempts) {
    return giveUp(`attempt cap reached (${attempt} of ${policy.maxAttempts})`)
  }
  const backoff = jittered(policy, capped(policy, exponentialDelay(policy, attempt)), random)
  const delay = honourRetryAfter(backoff, failure)
  const elapsed = Duration.decode(input.elapsed)
  if (Duration.greaterThan(Duration.sum(elapsed, delay), policy.maxElapsed)) {
    const hint = Duration.greaterThan(delay, backoff) ? "the server's retry-after of " : "a delay of "
    return giveUp(
      `elapsed cap reached: ${format(elapsed)} elapsed + ${hint}${format(delay)} ` +
        `would pass maxElapsed (${format(policy.maxElapsed)})`
    )
  }
  return { _tag: "Retry", delay }
}

/**
 * The same policy as a `Schedule` for `Effect.retry`, built from `Schedule` combinators. It outputs each
 * delay it chose. Its `maxElapsed` is counted from the first failure (a `Schedule` cannot see when the
 * first attempt started); a step whose budget must survive a restart uses `decide`.
 */
export const schedule = (policy: RetryPolicy): Schedule.Schedule<Duration.Duration, Failure> => {
  const backoff = Schedule.exponential(policy.base, policy.factor).pipe(
    Schedule.modifyDelay((_, delay) => capped(policy, delay)),
    Schedule.jitteredWith({ min: 1 - policy.jitter / 2, max: 1 + policy.jitter / 2 }),
    Schedule.modifyDelay((_, delay) => capped(policy, delay))
  )
  return Schedule.intersect(backoff, Schedule.identity<Failure>()).pipe(
    Schedule.modifyDelay(([, failure], delay) => honourRetryAfter(delay, failure)),
    Schedule.whileInput((failure: Failure) => failure._tag === "Transient"),
    Schedule.intersect(Schedule.recurs(policy.maxAttempts - 1)),
    Schedule.delays,
    Schedule.intersect(Schedule.elapsed),
    Schedule.check((_, [delay, elapsed]) =>
      Duration.lessThanOrEqualTo(Duration.sum(elapsed, delay), policy.maxElapsed)
    ),
    Schedule.map(([delay]) => delay)
  )
}

// ---------------------------------------------------------------------------------------------------------

const giveUp = (reason: string): Decision => ({ _tag: "GiveUp", reason })

const format = (d: Duration.Duration): string => (Duration.isZero(d) ? "0ms" : Duration.format(d))

/** `base * factor^(attempt-1)`: the same curve as `Schedule.exponential`. */
const exponentialDelay = (policy: RetryPolicy, attempt: number): Duration.Duration =>
  Duration.times(policy.base, Math.pow(policy.factor, attempt - 1))

const capped = (policy: RetryPolicy, delay: Duration.Duration): Duration.Duration =>
  Duration.min(delay, policy.maxDelay)

/** The formula of `Schedule.jitteredWith({ min: 1 - jitter/2, max: 1 + jitter/2 })`, capped again. */
const jittered = (policy: RetryPolicy, delay: Duration.Duration, random: number): Duration.Duration => {
  const min = 1 - policy.jitter / 2
  const max = 1 + policy.jitter / 2
  const millis = Duration.toMillis(delay)
  return capped(policy, Duration.millis(millis * min * (1 - random) + millis * max * random))
}

const honourRetryAfter = (delay: Duration.Duration, failure: Failure): Duration.Duration => {
  const retryAfter = failure._tag === "Transient" ? failure.retryAfter : undefined
  return retryAfter === undefined ? delay : Duration.max(delay, retryAfter)
}

// Function declarations (hoisted): `none` and `defaultPolicy` above call them at module load.
function durationOption(option: string, input: Duration.DurationInput): Duration.Duration {
  const negative = (typeof input === "number" && !(input >= 0)) ||
    (typeof input === "bigint" && input < 0n) ||
    (typeof input === "string" && input.trim().startsWith("-")) ||
    (Array.isArray(input) && input.some((n) => !(n >= 0)))
  if (negative) invalid(option, input, "a non-negative duration")
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") invalid(option, input, "a duration (e.g. \"2 seconds\" or a number of millis)")
  return decoded.value
}

function invalid(option: string, value: unknown, expected: string): never {
  throw new Error(`RetryPolicy.exponential: ${option} must be ${expected}, got ${String(value)}`)
}
