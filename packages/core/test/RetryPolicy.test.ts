/**
 * Retry policies, by property: `decide` (the engine's, across processes) and `schedule` (Effect.retry's,
 * driven under TestClock) keep the same promises, and agree with each other.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Failure from "../src/Failure.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import { driveToEnd } from "./fixtures/clock.js"

/** Float slack for delays computed through fractional millis (jitter) and the clock's arithmetic. */
const EPS = 1e-6

// ---------------------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------------------

const policyOptions = (options?: { readonly integral?: boolean }) =>
  fc.record({
    base: fc.integer({ min: 0, max: 2_000 }),
    factor: options?.integral ? fc.integer({ min: 1, max: 3 }) : fc.double({ min: 1, max: 4, noNaN: true }),
    maxDelay: fc.integer({ min: 0, max: 60_000 }),
    maxAttempts: fc.integer({ min: 1, max: 10 }),
    maxElapsed: fc.integer({ min: 0, max: 300_000 }),
    jitter: options?.integral ? fc.constant(0) : fc.double({ min: 0, max: 1, noNaN: true })
  })

const policy = policyOptions().map((options) => RetryPolicy.exponential(options))
/** Integer millis and no jitter: every delay is exact, so `schedule` and `decide` must agree exactly. */
const integralPolicy = policyOptions({ integral: true }).map((options) => RetryPolicy.exponential(options))

const transient: fc.Arbitrary<Failure.Failure> = fc
  .option(fc.integer({ min: 0, max: 120_000 }), { nil: undefined })
  .map((retryAfter) => Failure.transient("flaky", retryAfter === undefined ? {} : { retryAfter }))
const deterministic: fc.Arbitrary<Failure.Failure> = fc.constant(Failure.deterministic("broken"))
/** Mostly transient, sometimes deterministic, so both paths are exercised. */
const failure = fc.oneof({ arbitrary: transient, weight: 4 }, { arbitrary: deterministic, weight: 1 })
/** The failure of each attempt (the last one repeats). */
const failures = fc.array(failure, { minLength: 1, maxLength: 12 })
const randoms = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 12 })

const at = <A>(as: ReadonlyArray<A>, i: number): A => as[Math.min(i, as.length - 1)]!
/** The i-th number `Random.fixed(rs)` hands out: it cycles through `rs`. */
const cycled = (rs: ReadonlyArray<number>, i: number): number => rs[i % rs.length]!
const retryAfterMillis = (f: Failure.Failure): number =>
  f._tag === "Transient" && f.retryAfter !== undefined ? Duration.toMillis(f.retryAfter) : 0
const firstDeterministic = (fs: ReadonlyArray<Failure.Failure>): number | undefined => {
  const i = fs.findIndex((f) => f._tag === "Deterministic")
  return i === -1 ? undefined : i
}

// ---------------------------------------------------------------------------------------------------------
// `decide`, as the engine drives it
// ---------------------------------------------------------------------------------------------------------

interface Run {
  /** When each attempt started, in millis since the first one started. */
  readonly starts: ReadonlyArray<number>
  readonly delays: ReadonlyArray<number>
  readonly giveUp: string
}

/**
 * Attempt until `decide` gives up; attempt i fails with failures[i] (the last one repeats) after running
 * attemptMillis[i], and its jitter draws rs[i] as `Random.fixed(rs)` would (cycling), so that `retried` below
 * and this agree on every draw.
 */
const simulate = (
  p: RetryPolicy.RetryPolicy,
  fs: ReadonlyArray<Failure.Failure>,
  rs: ReadonlyArray<number>,
  attemptMillis: ReadonlyArray<number> = [0]
): Run => {
  const starts: Array<number> = []
  const delays: Array<number> = []
  let now = 0
  for (let i = 0;; i++) {
    starts.push(now)
    now += at(attemptMillis, i)
    const decision = RetryPolicy.decide(p, {
      failure: at(fs, i),
      attempt: i + 1,
      elapsed: Duration.millis(now),
      random: cycled(rs, i)
    })
    if (decision._tag === "GiveUp") return { starts, delays, giveUp: decision.reason }
    delays.push(Duration.toMillis(decision.delay))
    now += Duration.toMillis(decision.delay)
  }
}

describe("RetryPolicy.decide", () => {
  const attemptMillis = fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 12 })

  it.prop("a deterministic failure is attempted exactly once", { p: policy, r: randoms }, ({ p, r }) => {
    const run = simulate(p, [Failure.deterministic("broken")], r)
    expect(run.starts).toHaveLength(1)
    expect(run.giveUp).toMatch(/^a deterministic failure is never retried/)
  })

  it.prop(
    "attempts stop at the first deterministic failure and never pass maxAttempts",
    { p: policy, fs: failures, r: randoms, t: attemptMillis },
    ({ fs, p, r, t }) => {
      const run = simulate(p, fs, r, t)
      expect(run.starts.length).toBeLessThanOrEqual(p.maxAttempts)
      const stop = firstDeterministic(fs)
      if (stop !== undefined) expect(run.starts.length).toBeLessThanOrEqual(stop + 1)
    }
  )

  it.prop(
    "no delay is below the failure's retryAfter, nor above maxDelay unless retryAfter demands it",
    { p: policy, fs: failures, r: randoms, t: attemptMillis },
    ({ fs, p, r, t }) => {
      const run = simulate(p, fs, r, t)
      run.delays.forEach((delay, i) => {
        const retryAfter = retryAfterMillis(at(fs, i))
        expect(delay).toBeGreaterThanOrEqual(retryAfter)
        expect(delay).toBeLessThanOrEqual(Math.max(Duration.toMillis(p.maxDelay), retryAfter) + EPS)
      })
    }
  )

  it.prop(
    "the backoff is base * factor^(attempt-1), capped, within ±jitter/2",
    { p: policy, r: randoms },
    ({ p, r }) => {
      const run = simulate(p, [Failure.transient("flaky")], r)
      run.delays.forEach((delay, i) => {
        const backoff = Math.min(Duration.toMillis(p.base) * Math.pow(p.factor, i), Duration.toMillis(p.maxDelay))
        expect(delay).toBeGreaterThanOrEqual(backoff * (1 - p.jitter / 2) - EPS)
        expect(delay).toBeLessThanOrEqual(Math.min(backoff * (1 + p.jitter / 2), Duration.toMillis(p.maxDelay)) + EPS)
      })
    }
  )

  it.prop(
    "every attempt starts within maxElapsed of the first, counting the attempts' own time",
    { p: policy, fs: failures, r: randoms, t: attemptMillis },
    ({ fs, p, r, t }) => {
      const run = simulate(p, fs, r, t)
      for (const start of run.starts) expect(start).toBeLessThanOrEqual(Duration.toMillis(p.maxElapsed))
    }
  )

  it.prop(
    "a transient failure is given up on only when a cap fires, and the reason names it",
    { p: policy, fs: fc.array(transient, { minLength: 1, maxLength: 12 }), r: randoms },
    ({ fs, p, r }) => {
      const run = simulate(p, fs, r)
      const attempts = run.starts.length
      if (attempts >= p.maxAttempts) {
        expect(run.giveUp).toBe(`attempt cap reached (${attempts} of ${p.maxAttempts})`)
      } else {
        expect(run.giveUp).toMatch(/^elapsed cap reached: .* would pass maxElapsed/)
      }
    }
  )

  it("the server's retryAfter wins over maxDelay, but a hint past maxElapsed gives up at once", () => {
    const p = RetryPolicy.exponential({ base: "1 second", maxDelay: "2 seconds", maxAttempts: 5, maxElapsed: "1 minute" })
    const hinted = RetryPolicy.decide(p, {
      failure: Failure.transient("slow down", { retryAfter: "30 seconds" }),
      attempt: 1,
      elapsed: "10 seconds",
      random: 0.5
    })
    expect(hinted).toStrictEqual({ _tag: "Retry", delay: Duration.seconds(30) })
    const tooLate = RetryPolicy.decide(p, {
      failure: Failure.transient("slow down", { retryAfter: "30 seconds" }),
      attempt: 1,
      elapsed: "40 seconds",
      random: 0.5
    })
    expect(tooLate).toStrictEqual({
      _tag: "GiveUp",
      reason: "elapsed cap reached: 40s elapsed + the server's retry-after of 30s would pass maxElapsed (1m)"
    })
  })

  it("the attempt count carries across processes: attempt 5 of 5 gives up whatever the elapsed time", () => {
    expect(
      RetryPolicy.decide(RetryPolicy.defaultPolicy, {
        failure: Failure.transient("flaky"),
        attempt: 5,
        elapsed: 0,
        random: 0
      })
    ).toStrictEqual({ _tag: "GiveUp", reason: "attempt cap reached (5 of 5)" })
  })

  it("none never retries", () => {
    expect(
      RetryPolicy.decide(RetryPolicy.none, { failure: Failure.transient("flaky"), attempt: 1, elapsed: 0, random: 0 })
    ).toStrictEqual({ _tag: "GiveUp", reason: "attempt cap reached (1 of 1)" })
  })
})

describe("RetryPolicy.exponential", () => {
  it("defaultPolicy is 200 millis doubling to 30 seconds, 5 attempts, 5 minutes, jitter 0.2", () => {
    expect(RetryPolicy.defaultPolicy).toStrictEqual({
      base: Duration.millis(200),
      factor: 2,
      maxDelay: Duration.seconds(30),
      maxAttempts: 5,
      maxElapsed: Duration.minutes(5),
      jitter: 0.2
    })
  })

  it("rejects invalid options at construction, naming the option", () => {
    const valid = { base: "1 second", maxDelay: "1 minute", maxAttempts: 3, maxElapsed: "5 minutes" } as const
    expect(() => RetryPolicy.exponential({ ...valid, maxAttempts: 0 })).toThrow(/maxAttempts must be an integer >= 1/)
    expect(() => RetryPolicy.exponential({ ...valid, maxAttempts: 2.5 })).toThrow(/maxAttempts/)
    expect(() => RetryPolicy.exponential({ ...valid, base: -1 })).toThrow(/base must be a non-negative duration/)
    expect(() => RetryPolicy.exponential({ ...valid, maxDelay: "-2 seconds" })).toThrow(/maxDelay/)
    expect(() => RetryPolicy.exponential({ ...valid, maxElapsed: Number.NaN })).toThrow(/maxElapsed/)
    expect(() => RetryPolicy.exponential({ ...valid, jitter: 1.5 })).toThrow(/jitter must be a number in 0\.\.1/)
    expect(() => RetryPolicy.exponential({ ...valid, factor: 0.5 })).toThrow(/factor must be a finite number >= 1/)
    expect(() => RetryPolicy.exponential({ ...valid, base: "soon" as Duration.DurationInput })).toThrow(/base must be a duration/)
    expect(RetryPolicy.exponential({ ...valid, maxAttempts: Infinity, maxElapsed: Duration.infinity }).maxAttempts)
      .toBe(Infinity)
  })
})

// ---------------------------------------------------------------------------------------------------------
// `schedule`, driven by Effect.retry under TestClock
// ---------------------------------------------------------------------------------------------------------

/**
 * Run an effect that fails with fs[i] on attempt i under `Effect.retry(…, schedule(p))`, with the random
 * numbers `rs` for the jitter, advancing the TestClock past every sleep. Attempt i runs attemptMillis[i]
 * (the last one repeats) of clock time before it fails. Returns the attempts' start times.
 */
const retried = (
  p: RetryPolicy.RetryPolicy,
  fs: ReadonlyArray<Failure.Failure>,
  rs: ReadonlyArray<number>,
  attemptMillis: ReadonlyArray<number> = [0]
) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<ReadonlyArray<number>>([])
    const attempt = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const done = yield* Ref.getAndUpdate(starts, (s) => [...s, now])
      const millis = at(attemptMillis, done.length)
      if (millis > 0) yield* Effect.sleep(Duration.millis(millis))
      return yield* Effect.fail(at(fs, done.length))
    })
    const fiber = yield* Effect.fork(
      Effect.retry(attempt, RetryPolicy.schedule(p)).pipe(Effect.withRandom(Random.fixed([rs[0] ?? 0, ...rs.slice(1)])))
    )
    const exit = yield* driveToEnd(fiber)
    return { exit, starts: yield* Ref.get(starts) }
  })

/**
 * What `decide` does with the same attempts, seen as `schedule` sees them: a `Schedule` first hears of a run
 * at its first failure, so its maxElapsed counts from there (see `RetryPolicy.schedule`). `decide` is given
 * a first attempt of 0 ms and the starts are shifted by the real first attempt's time; every later attempt's
 * own time counts in both.
 */
const decidedAsScheduled = (
  p: RetryPolicy.RetryPolicy,
  fs: ReadonlyArray<Failure.Failure>,
  rs: ReadonlyArray<number>,
  attemptMillis: ReadonlyArray<number>
): ReadonlyArray<number> => {
  const first = at(attemptMillis, 0)
  const fromFirstFailure = Array.from({ length: 16 }, (_, i) => (i === 0 ? 0 : at(attemptMillis, i)))
  return simulate(p, fs, rs, fromFirstFailure).starts.map((start, i) => (i === 0 ? start : start + first))
}

// Each TestClock.setTime waits for the fibers to settle on every sleep, so these runs cost ~30-150ms each
// (more on a loaded machine). A failing run is shrunk through hundreds more: the time limit stops the
// shrinking in time to report the counterexample found so far, where vitest's timeout would report only
// "timed out"; markInterruptAsFailure makes a machine too slow to finish the runs fail the property instead
// of passing it on fewer cases than it names.
const scheduleRuns = {
  timeout: 180_000,
  fastCheck: { numRuns: 50, interruptAfterTimeLimit: 150_000, markInterruptAsFailure: true }
}
/** Attempts' own times, long enough against the arbitraries' maxElapsed (0..300 s) to decide some runs. */
const scheduleAttemptMillis = fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 1, maxLength: 12 })

describe("RetryPolicy.schedule", () => {
  it.effect.prop(
    "under Effect.retry: a deterministic failure is attempted once, attempts never pass maxAttempts",
    { p: policy, fs: failures, r: randoms },
    ({ fs, p, r }) =>
      Effect.gen(function*() {
        const { exit, starts } = yield* retried(p, fs, r)
        expect(starts.length).toBeLessThanOrEqual(p.maxAttempts)
        const stop = firstDeterministic(fs)
        if (stop !== undefined) expect(starts.length).toBeLessThanOrEqual(stop + 1)
        // Effect.retry fails with the last attempt's failure.
        expect(exit).toStrictEqual(Exit.fail(at(fs, starts.length - 1)))
      }),
    scheduleRuns
  )

  it.effect.prop(
    "under Effect.retry: delays respect retryAfter and maxDelay, and the last attempt starts within maxElapsed",
    { p: policy, fs: failures, r: randoms },
    ({ fs, p, r }) =>
      Effect.gen(function*() {
        const { starts } = yield* retried(p, fs, r)
        for (let i = 1; i < starts.length; i++) {
          const delay = starts[i]! - starts[i - 1]!
          const retryAfter = retryAfterMillis(at(fs, i - 1))
          expect(delay).toBeGreaterThanOrEqual(retryAfter - EPS)
          expect(delay).toBeLessThanOrEqual(Math.max(Duration.toMillis(p.maxDelay), retryAfter) + EPS)
        }
        expect(starts[starts.length - 1]! - starts[0]!).toBeLessThanOrEqual(Duration.toMillis(p.maxElapsed) + EPS)
      }),
    scheduleRuns
  )

  it.effect.prop(
    "schedule and decide agree: same number of attempts, same delays, maxElapsed counting the attempts' own time",
    { p: integralPolicy, fs: failures, r: randoms, t: scheduleAttemptMillis },
    ({ fs, p, r, t }) =>
      Effect.gen(function*() {
        const { starts } = yield* retried(p, fs, r, t)
        expect(starts).toStrictEqual(decidedAsScheduled(p, fs, r, t))
      }),
    scheduleRuns
  )

  it.effect.prop(
    "schedule and decide agree with jitter and the attempts' own time too, within float slack",
    { p: policy, fs: failures, r: randoms, t: scheduleAttemptMillis },
    ({ fs, p, r, t }) =>
      Effect.gen(function*() {
        const { starts } = yield* retried(p, fs, r, t)
        const expected = decidedAsScheduled(p, fs, r, t)
        expect(starts.length).toBe(expected.length)
        starts.forEach((start, i) => expect(start).toBeCloseTo(expected[i]!, 3))
      }),
    scheduleRuns
  )

  it.effect("the server's retryAfter is honoured even past maxDelay", () =>
    Effect.gen(function*() {
      const p = RetryPolicy.exponential({ base: "100 millis", maxDelay: "1 second", maxAttempts: 3, maxElapsed: "1 minute", jitter: 0 })
      const { starts } = yield* retried(p, [Failure.transient("slow down", { retryAfter: "10 seconds" })], [0])
      expect(starts).toStrictEqual([0, 10_000, 20_000])
    }))
})
