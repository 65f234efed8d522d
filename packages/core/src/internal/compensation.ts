/**
 * Running one compensation to effect when its run is undone: journaled, retried on `Transient` by the
 * step's own `compensateRetry` through the same attempt loop as step bodies. A compensation that gives up
 * stops the undo: what is left, this step first, waits for a person and `Engine.rollback`.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"
import * as Event from "../Event.js"
import type { CompensationContext } from "../StepDefinition.js"
import * as Attempts from "./attempts.js"
import * as Tracing from "./tracing.js"
import type { RetryPolicy } from "../RetryPolicy.js"
import { classifyCause } from "./stepRun.js"

export interface Compensation<R> {
  readonly runId: string
  readonly stepId: string
  readonly policy: RetryPolicy
  /** The compensation, applied to the step's output and input. */
  readonly undo: (context: CompensationContext) => Effect.Effect<void, unknown, R>
  readonly append: (events: ReadonlyArray<Event.Event>) => Effect.Effect<void>
  /** Spans are made; under the run's span (a compensation runs when the run's scope closes, as its child). */
  readonly traced: boolean
  readonly span: Tracer.AnySpan | undefined
}

type Done = { readonly _tag: "Compensated" } | { readonly _tag: "GaveUp"; readonly reason: string }

const compensated: Done = { _tag: "Compensated" }

/** Run it: `Compensated`, or `GaveUp` with why (the run now needs a person). */
export const compensate = <R>(c: Compensation<R>): Effect.Effect<Done, never, R> =>
  Effect.flatMap(Clock.currentTimeMillis, (at) =>
    c.append([Event.make(Event.CompensationStarted, { at, stepId: c.stepId, attempt: 1 })]).pipe(
      Effect.zipRight(Attempts.loop<Done, never, R, never>({ policy: c.policy, driftCap: undefined }, 1, Attempts.freshBudget, {
        traced: c.traced,
        name: "ledgerflow.attempt",
        attributes: { "ledgerflow.run_id": c.runId, "ledgerflow.step_id": c.stepId, "ledgerflow.compensation": true }
      }, (attempt, failed) =>
        Effect.flatMap(Clock.currentTimeMillis, (startedAt) =>
          Effect.matchCauseEffect(
            // Suspended: a compensation that throws instead of returning an effect fails its attempt as a defect.
            Effect.suspend(() =>
              c.undo({ runId: c.runId, stepId: c.stepId, attempt, idempotencyKey: `${c.runId}/${c.stepId}/compensate` })
            ),
            {
              onSuccess: () =>
                Effect.flatMap(Clock.currentTimeMillis, (at) =>
                  Effect.as(c.append([Event.make(Event.CompensationCompleted, { at, stepId: c.stepId, attempt })]), compensated)),
              onFailure: (cause) =>
                Cause.isInterruptedOnly(cause) ? Effect.interrupt : failed({
                  failure: classifyCause(cause, undefined),
                  startedAt,
                  record: (next, at) =>
                    c.append([
                      Event.make(Event.CompensationFailed, {
                        at,
                        stepId: c.stepId,
                        attempt,
                        failure: next.failure,
                        ...(next._tag === "Retry" ? { retryDelayMs: Duration.toMillis(next.delay) } : {})
                      })
                    ])
                })
            }
          ))
      , (failure, reason) =>
        Effect.succeed<Done>({
          _tag: "GaveUp",
          reason: `the compensation of step ${c.stepId} failed (${failure.reason}); ${reason}`
        }))),
      Effect.tap((done) =>
        Tracing.annotate(c.traced, { "ledgerflow.compensation.outcome": done._tag === "Compensated" ? "compensated" : "gave up" })
      )
    )).pipe(Tracing.span(c.traced, "ledgerflow.compensation", {
      attributes: { "ledgerflow.run_id": c.runId, "ledgerflow.step_id": c.stepId },
      parent: c.span
    }))
