/**
 * Executing a step call that the journal cannot serve: its attempts (the budget checked before each, an
 * irreversible step's start made durable before its body, the outcome journaled with usage and findings),
 * and the reconcile of an irreversible step a dead worker left in doubt.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Event from "../Event.js"
import * as Failure from "../Failure.js"
import type * as Journal from "../Journal.js"
import { BudgetExceeded, type Definition, type Finding, type StepContext, type StepError } from "../StepDefinition.js"
import { LeaseLost } from "../StoreError.js"
import type { Usage } from "../Usage.js"
import * as Attempts from "./attempts.js"
import { noReservation } from "./budget.js"
import * as JournalSafe from "./journalSafe.js"
import type { RunOps } from "./runOps.js"

const noAttributes = {}

/** A call to execute: the step, its input, and its identity in the run. */
export interface Call<I, O, E, R> {
  readonly step: Definition<I, O, E, R>
  readonly input: I
  readonly stepId: string
  readonly inputHash: string
}

/**
 * Execute the call, continuing the attempts (and the retry budget, for the same input) of `prior`. Called
 * where the call runs (the first attempt starts here, unless a backoff or a reconcile comes first).
 */
export const execute = <I, O, E, R>(
  run: RunOps,
  call: Call<I, O, E, R>,
  prior: Journal.StepEntry | undefined
): Effect.Effect<O, StepError, R> => {
  const { step, stepId } = call
  const sameInput = prior !== undefined && prior.completed === undefined && prior.inputHash === call.inputHash
  const idempotencyKey = `${run.runId}/${stepId}`
  const attempts = () =>
    Attempts.loop<O, StepError, R, StepError>(
      { policy: step.retry, driftCap: step.driftCap },
      (prior?.failedAttempts ?? 0) + 1,
      sameInput ? prior.budget : Attempts.freshBudget,
      {
        traced: run.traced,
        name: "ledgerflow.attempt",
        attributes: run.traced ? { "ledgerflow.run_id": run.runId, "ledgerflow.step_id": stepId } : noAttributes
      },
      (attempt, failed) => attemptOnce(run, call, attempt, idempotencyKey, failed),
      (failure) => {
        run.failedAt(failure, stepId)
        return Effect.fail(failure)
      }
    )
  // A previous process scheduled this step's retry: keep its backoff.
  const retryAt = sameInput ? prior.retryAt : undefined
  const waited = () => {
    const wait = retryAt === undefined ? 0 : retryAt - run.clock.unsafeCurrentTimeMillis()
    return wait > 0 ? Effect.flatMap(Effect.sleep(Duration.millis(wait)), attempts) : attempts()
  }
  if (!(step.irreversible && prior?.inDoubt !== undefined)) return waited()
  return Effect.flatMap(
    reconcile(run, call, prior.inDoubt),
    Option.match({ onNone: waited, onSome: Effect.succeed })
  )
}

/**
 * One attempt, started now: the lease and the budget checked, an irreversible step's start journaled, the
 * body run, its outcome journaled. Succeeding, it is the step's output; failing, it goes on with `failed`.
 */
const attemptOnce = <I, O, E, R, B, E2>(
  run: RunOps,
  call: Call<I, O, E, R>,
  attempt: number,
  idempotencyKey: string,
  failed: (failed: Attempts.Failed<StepError>) => Effect.Effect<B, E2, R>
): Effect.Effect<O | B, StepError | E2, R> => {
  const { step, stepId, input, inputHash } = call
  const startedAt = run.clock.unsafeCurrentTimeMillis()
  if (startedAt >= run.leaseExpiresAt()) {
    // This worker was stopped (or starved) past its lease: another may own the run. Start nothing.
    return run.stop(
      new LeaseLost({
        runId: run.runId,
        token: run.token,
        message: `the lease of run ${run.runId} ran out before step ${stepId} could start`
      })
    )
  }
  // A paid step checks the run's budget before each attempt: an attempt that would pass it is never made.
  const reservation = run.budget?.reserve(step, input, stepId) ?? noReservation
  if (reservation instanceof BudgetExceeded) {
    // The call fails with the class (code around it may `catchTag("BudgetExceeded")`); the run journals
    // the Failure it carries.
    run.failedAt(reservation, stepId)
    return Effect.fail(reservation)
  }
  const usage: Array<Usage> = []
  const findings: Array<Finding> = []
  const context: StepContext = {
    runId: run.runId,
    stepId,
    attempt,
    idempotencyKey,
    reportUsage: (u) => Effect.sync(() => void usage.push(u)),
    reportFinding: (f) => Effect.sync(() => void findings.push(f))
  }
  // Made when the body is due: for an irreversible step, after its start was journaled.
  const body = () => {
    const made = makeBody(step, input, context)
    return reservation === noReservation ? made : Effect.ensuring(made, Effect.sync(() => run.budget?.release(reservation)))
  }
  const extras = (at: number) => findings.length > 0 ? findingEvents(findings, at, stepId, step.name, attempt) : []
  // What the attempt's outcome event says of it, whatever the outcome.
  const about = (at: number) => ({ at, stepId, name: step.name, inputHash, attempt, startedAt })
  const failedWith = (failure: Failure.Failure) =>
    failed({
      failure,
      startedAt,
      record: (next, at) =>
        Effect.zipRight(
          run.append([
            Event.make(Event.StepAttemptFailed, {
              ...about(at),
              failure: next.failure,
              ...(next._tag === "Retry" ? { retryDelayMs: Duration.toMillis(next.delay) } : { giveUp: next.reason }),
              ...(usage.length > 0 ? { usage } : {})
            }),
            ...extras(at)
          ]),
          Effect.sync(() => run.budget?.addSpent(usage))
        ).pipe(usage.length > 0 && run.traced ? Effect.zipLeft(Effect.annotateCurrentSpan("ledgerflow.tokens", "wasted")) : identity)
    })
  const outcome = () => Effect.matchCauseEffect(body(), {
    onSuccess: (value): Effect.Effect<O | B, StepError | E2, R> => {
      const journaled = journalable(step, value, `step ${stepId}`)
      if (Either.isLeft(journaled)) return failedWith(journaled.left)
      const at = run.clock.unsafeCurrentTimeMillis()
      return run.appendThen([
        Event.make(Event.StepCompleted, { ...about(at), output: journaled.right, ...(usage.length > 0 ? { usage } : {}) }),
        ...extras(at)
      ], () => {
        run.budget?.addSpent(usage)
        const done = run.completed(step, stepId, input, value)
        // A paid attempt's tokens bought its output: spent (a failed one's are wasted).
        return usage.length > 0 && run.traced
          ? Effect.zipLeft(done, Effect.annotateCurrentSpan("ledgerflow.tokens", "spent"))
          : done
      })
    },
    onFailure: (cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.interrupt : failedWith(classifyCause(cause, step.classify))
  })
  // Durable before the body runs: a crash from here on leaves the step in doubt, never blindly re-sent.
  return step.irreversible
    ? run.appendThen([
      Event.make(Event.StepStarted, { at: startedAt, stepId, name: step.name, inputHash, attempt, idempotencyKey })
    ], outcome)
    : outcome()
}

/** The step's body for this attempt; a `run` that throws instead of returning an effect fails the attempt as a defect. */
const makeBody = <I, O, E, R>(step: Definition<I, O, E, R>, input: I, context: StepContext): Effect.Effect<O, E, R> => {
  try {
    return step.run(input, context)
  } catch (defect) {
    return Effect.die(defect)
  }
}

/**
 * An irreversible step was started by a worker that died before it completed (`inDoubt`, from its journaled
 * start). Ask `reconcile`, with the idempotency key that start sent, whether it happened; without one, the
 * run needs a person. `None`: not sent, so it may run again.
 */
export const reconcile = <I, O, E, R>(
  run: RunOps,
  call: Call<I, O, E, R>,
  inDoubt: NonNullable<Journal.StepEntry["inDoubt"]>
): Effect.Effect<Option.Option<O>, StepError, R> =>
  Effect.gen(function*() {
    const { step, stepId, input, inputHash } = call
    const { attempt, idempotencyKey } = inDoubt
    if (step.reconcile === undefined) {
      const reason =
        `irreversible step ${stepId} was started (attempt ${attempt}, idempotency key ${idempotencyKey}) but its worker stopped before recording the outcome, and the step has no reconcile: check whether it happened, then resume or roll back by hand`
      run.inDoubt(stepId, { reason, pending: [stepId] })
      return yield* Effect.fail(Failure.deterministic(reason, { rule: "in-doubt" }))
    }
    const startedAt = yield* Clock.currentTimeMillis
    const found = yield* Effect.exit(step.reconcile(input, idempotencyKey))
    if (Exit.isFailure(found)) {
      if (Cause.isInterruptedOnly(found.cause)) return yield* Effect.interrupt
      const failure = classifyCause(found.cause, undefined)
      return yield* Effect.fail(Failure.isTransient(failure) ? failure : Failure.deterministic(
        `the reconcile of irreversible step ${stepId} failed: ${failure.reason}`,
        { rule: failure.rule ?? "reconcile", ...(failure.cause !== undefined ? { cause: failure.cause } : {}) }
      ))
    }
    if (Option.isNone(found.value)) return Option.none()
    const journaled = journalable(step, found.value.value, `the reconcile of step ${stepId}`)
    if (Either.isLeft(journaled)) return yield* Effect.fail(journaled.left)
    const at = yield* Clock.currentTimeMillis
    yield* run.append([
      Event.make(Event.StepCompleted, { at, stepId, name: step.name, inputHash, attempt, startedAt, output: journaled.right })
    ])
    return Option.some(yield* run.completed(step, stepId, input, found.value.value))
  })

/**
 * The output encoded as it is journaled, or why it cannot be: it does not match the Schema, or it would not
 * come back from the journal as it went in — failing now, on the first run, is what keeps a resume from
 * serving a changed value or calling it a divergence later.
 */
export const journalable = <O>(
  codec: { readonly codec: { readonly encodeOutput: (o: O) => Either.Either<unknown, ParseResult.ParseError>; readonly decodeOutput: (u: unknown) => Either.Either<O, ParseResult.ParseError> } },
  output: O,
  what: string
): Either.Either<unknown, Failure.Deterministic> => {
  const encoded = codec.codec.encodeOutput(output)
  if (Either.isLeft(encoded)) {
    return Either.left(Failure.deterministic(
      `${what} returned an output that does not match its Schema: ${ParseResult.TreeFormatter.formatErrorSync(encoded.left)}`,
      { rule: "schema" }
    ))
  }
  const lost = JournalSafe.check(encoded.right, codec.codec.decodeOutput)
  return lost === undefined ? Either.right(encoded.right) : Either.left(journalLoss(what, lost))
}

const journalLoss = (what: string, why: string): Failure.Deterministic =>
  Failure.deterministic(
    `${what} returned an output the journal cannot keep (${why}); its Schema must encode it to plain JSON (e.g. Schema.Date for a Date, Schema.BigInt for a bigint, Schema.ReadonlyMap for a Map, a finite number or Schema.NonNaN)`,
    { rule: "journal" }
  )

/** An attempt's findings as events, appended with the attempt's outcome (no extra append). */
const findingEvents = (
  findings: ReadonlyArray<Finding>,
  at: number,
  stepId: string,
  name: string,
  attempt: number
): ReadonlyArray<Event.StepFinding> =>
  findings.map((f) =>
    Event.make(Event.StepFinding, {
      at,
      stepId,
      name,
      attempt,
      kind: f.kind,
      message: f.message,
      ...(f.limit !== undefined ? { limit: f.limit } : {}),
      ...(f.actual !== undefined ? { actual: f.actual } : {})
    })
  )

/** Classify what an attempt failed with: its typed error (by the step's own rule) or a defect. */
export const classifyCause = <E>(
  cause: Cause.Cause<E>,
  classify: ((error: E) => Failure.Failure) | undefined
): Failure.Failure => {
  const failureOrCause = Cause.failureOrCause(cause)
  if (Either.isLeft(failureOrCause)) {
    const error = failureOrCause.left
    if (classify !== undefined) return classify(error)
    return Failure.classify(Cause.isUnknownException(error) ? error.error : error)
  }
  return Failure.classify(Cause.squash(failureOrCause.right))
}
