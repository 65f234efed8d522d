/**
 * The step runner of one execution of a run: gives each step call its identity, serves completed steps
 * from the journal, executes the others with retries, and appends what happened. One per execution.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Event from "../Event.js"
import type { EventStoreService, RunPatch } from "../EventStore.js"
import * as Failure from "../Failure.js"
import * as Journal from "../Journal.js"
import { type Budget, BudgetExceeded } from "../Pipeline.js"
import * as Pricing from "../Pricing.js"
import * as RetryPolicy from "../RetryPolicy.js"
import {
  type CompensationContext,
  DuplicateStepName,
  type Finding,
  type Step,
  type StepContext,
  StepDiverged,
  type StepError,
  validateName
} from "../Step.js"
import { LeaseLost, type SeqConflict, type StoreError } from "../StoreError.js"
import type { Usage } from "../Usage.js"
import { BudgetTracker, noReservation } from "./budget.js"
import { hashJson, toJson } from "./hash.js"
import * as JournalSafe from "./journalSafe.js"

/**
 * `execute`: run or resume. `replay`: serve from the log, append nothing, run no body. `rollback`: serve
 * from the log to rebuild the run's scope of compensations, then undo (compensations are journaled).
 */
export type Mode = "execute" | "replay" | "rollback"

/** How one step call went in a replay. */
export interface ReplayEntry {
  readonly stepId: string
  readonly name: string
  /** `served`: from the log; `reordered`: served from the completion of another occurrence of the same
   * step with the same input (concurrent calls that started in another order; `servedFrom` names it);
   * `diverged`: the log has this step with another input; `not-in-journal`: the code calls a step the log
   * does not have (the original run stopped before it, or the code changed). */
  readonly outcome: "served" | "reordered" | "diverged" | "not-in-journal"
  /** For `reordered`: the journal entry that served this call. */
  readonly servedFrom?: string
  readonly inputHash: string
  readonly expectedInputHash?: string
  readonly message?: string
}

/**
 * Why an execution stopped from inside: the store refused it, a completion to serve is damaged in the log
 * (its body is read only when served), or a replay reached a step it cannot serve.
 */
export type Abort = LeaseLost | SeqConflict | StoreError | Event.UnknownEvent | ReplayStopped

export class ReplayStopped {
  readonly _tag = "ReplayStopped"
  constructor(readonly entry: ReplayEntry) {}
}

export interface RunnerConfig {
  readonly runId: string
  readonly mode: Mode
  /** Re-execute steps whose input differs from the journal's instead of refusing. */
  readonly reexecuteDiverged: boolean
  readonly state: Journal.RunState
  readonly store: EventStoreService
  readonly token: number
  /** The run's scope: completed steps register their compensations in it; the engine closes it. */
  readonly scope: Scope.CloseableScope
  /** Until when this worker's lease is known to hold. */
  readonly leaseExpiresAt: number
  /** The bodies of the completions the state was folded without (`EventStore.readBodies`), by seq. */
  readonly bodies: ReadonlyMap<number, string>
  /** The execution's clock (the fiber's `Clock` when it started): the step path reads it directly. */
  readonly clock: Clock.Clock
  /** True while no other run executes in this engine: the store need not wait to batch an append. */
  readonly alone: (runner: StepRunner) => boolean
  /** The run's worker died mid-run (a rollback of a crash, not of a known failure). */
  readonly crashed?: boolean
  /** The run's spending limit, if any, and the prices that turn usage into dollars for it. */
  readonly budget?: Budget | undefined
  readonly pricing?: Pricing.PriceTable | undefined
}

/** The run cannot go on by itself: what happened and which steps still need a person. */
export interface Attention {
  readonly reason: string
  readonly pending: ReadonlyArray<string>
}

type Match =
  | { readonly _tag: "Served"; readonly entry: Journal.StepEntry; readonly reordered: boolean }
  | { readonly _tag: "Diverged"; readonly entry: Journal.StepEntry }
  | { readonly _tag: "Execute"; readonly prior: Journal.StepEntry | undefined }

export class StepRunner {
  private readonly occurrences = new Map<string, number>()
  /** The step value that owns each name in this run: another value with the same name is refused. */
  private readonly owners = new Map<string, object>()
  /** The fiber the pipeline's own code runs in: calls from other fibers are in a concurrent section. */
  private root = -1
  /** Journal entries a call of this execution has taken (served or executed). */
  private readonly claimed = new Set<string>()
  private servedPending: Array<string> = []
  private byNameHash: Map<string, Array<Journal.StepEntry>> | undefined
  /** Step ids served from the log in this execution. */
  readonly served: Array<string> = []
  readonly replayLog: Array<ReplayEntry> = []
  /** Set when the execution must stop; the engine reports it instead of the pipeline's outcome. */
  abort: Abort | undefined
  /** Which step a failure came from, for `RunFailed.stepId`. */
  readonly failedStep = new WeakMap<object, string>()
  /** Set once an irreversible step has completed: earlier steps are no longer compensated. */
  pivot: string | undefined
  /** Set when the run must stop for a person (an irreversible step in doubt, a compensation that failed). */
  attention: Attention | undefined
  /** Compensations registered in the scope, in completion order, and those that have run to effect. */
  readonly compensable: Array<string> = []
  readonly compensated = new Set<string>()
  /** Renewed by the engine's lease keeper. */
  leaseExpiresAt: number
  /** A rollback of a crashed run may first finish the one step the dead worker was in. */
  private rollForward: boolean

  /** The run's budget: what it spent so far and the estimates of attempts in flight. */
  private readonly budget: BudgetTracker | undefined

  constructor(readonly config: RunnerConfig) {
    this.leaseExpiresAt = config.leaseExpiresAt
    this.rollForward = config.mode === "rollback" && config.crashed === true
    this.budget = config.budget === undefined
      ? undefined
      : new BudgetTracker(config.runId, config.budget, config.pricing ?? Pricing.defaultTable, config.state)
  }

  /** Run the pipeline's code: its fiber is the one whose step calls are sequential. */
  enter<A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withFiberRuntime((fiber) => {
      this.root = fiber.id().id
      return program
    })
  }

  /** A step call inside the pipeline: serve it from the journal or execute it. */
  call<I, O, E, R>(step: Step<I, O, E, R>, input: I, key: string | undefined): Effect.Effect<O, StepError, R> {
    return Effect.withFiberRuntime((fiber) => {
      if (this.abort !== undefined) return Effect.interrupt
      const owner = this.owners.get(step.name)
      if (owner === undefined) this.owners.set(step.name, step)
      else if (owner !== step) return Effect.fail(this.duplicate(step.name, key))
      let stepId: string
      if (key === undefined) {
        // The occurrence is taken when the call starts, in program order, never when a step completes.
        const n = this.occurrences.get(step.name) ?? 0
        this.occurrences.set(step.name, n + 1)
        stepId = `${step.name}#${n}`
      } else {
        const problem = validateName("step key", key)
        if (problem !== undefined) {
          return Effect.fail(Failure.deterministic(`step ${step.name}: ${problem}`, { rule: "invalid-key" }))
        }
        stepId = `${step.name}[${key}]`
      }
      const encoded = step.codec.encodeInput(input)
      if (Either.isLeft(encoded)) {
        return Effect.fail(Failure.deterministic(
          `the input of step ${stepId} does not match its Schema: ${ParseResult.TreeFormatter.formatErrorSync(encoded.left)}`,
          { rule: "schema" }
        ))
      }
      const inputHash = hashJson(toJson(encoded.right))
      // Only an occurrence-numbered call made off the pipeline's own fiber (inside `Effect.all`, a fork) may
      // be served another occurrence's completion: there, the order of calls may really differ between runs.
      const concurrent = key === undefined && fiber.id().id !== this.root
      const match = this.match(stepId, step.name, inputHash, concurrent)
      switch (match._tag) {
        case "Served":
          return this.serve(step, match.entry, input, inputHash, match.reordered ? stepId : undefined)
        case "Diverged":
          return this.diverged(step, stepId, match.entry, input, inputHash)
        case "Execute":
          if (key !== undefined && this.claimed.has(stepId)) {
            return Effect.fail(Failure.deterministic(
              `step key "${key}" of step ${step.name} is used twice in run ${this.config.runId}; keys must be unique per step`,
              { rule: "invalid-key" }
            ))
          }
          if (this.config.mode === "rollback" && step.irreversible && match.prior?.inDoubt !== undefined) {
            // Before undoing anything, learn whether the in-doubt irreversible step happened: if it did,
            // the run is past its pivot and nothing before it may be undone.
            const inDoubt = match.prior.inDoubt
            return Effect.flatMap(
              this.reconcile(step, input, stepId, inputHash, inDoubt.attempt, `${this.config.runId}/${stepId}`),
              Option.match({
                onNone: () => this.stop({ stepId, name: step.name, outcome: "not-in-journal", inputHash }),
                onSome: Effect.succeed
              })
            )
          }
          if (this.rollForward && step.compensate !== undefined && !step.keepOnRollback && match.prior?.lastFailure?.final !== true) {
            // The dead worker may have been inside this step's body: its effect may exist with nothing in the
            // journal to undo it. Run it once more (steps that are not irreversible may be repeated) to reach
            // a known state; its compensation then undoes it with the rest.
            this.rollForward = false
            return this.execute(step, input, stepId, inputHash, match.prior)
          }
          if (this.config.mode !== "execute") {
            return this.stop({
              stepId,
              name: step.name,
              outcome: "not-in-journal",
              inputHash,
              message: match.prior?.lastFailure !== undefined
                ? `the run stopped at this step: ${match.prior.lastFailure.failure.reason}`
                : "the journal has no completion for this step"
            })
          }
          return this.execute(step, input, stepId, inputHash, match.prior)
      }
    })
  }

  private match(stepId: string, name: string, inputHash: string, concurrent: boolean): Match {
    const entry = this.config.state.steps.get(stepId)
    const free = entry !== undefined && Journal.isCompleted(entry) && !this.claimed.has(stepId)
    if (free && entry.inputHash === inputHash) return { _tag: "Served", entry, reordered: false }
    // The same step with the same input completed under another occurrence: concurrent calls started in
    // another order. Serve it rather than pay again, reported as reordered. Never for an explicit key (it
    // names one entry exactly) nor for sequential code (there, another order is a change of the code).
    const moved = concurrent ? this.unclaimedCompletion(name, inputHash) : undefined
    if (moved !== undefined) return { _tag: "Served", entry: moved, reordered: true }
    if (entry !== undefined && Journal.isCompleted(entry)) return { _tag: "Diverged", entry }
    return { _tag: "Execute", prior: entry }
  }

  private unclaimedCompletion(name: string, inputHash: string): Journal.StepEntry | undefined {
    if (this.byNameHash === undefined) {
      this.byNameHash = new Map()
      for (const e of this.config.state.steps.values()) {
        // Keyed entries (`name[key]`) are matched by their key only.
        if (!Journal.isCompleted(e) || e.stepId.endsWith("]")) continue
        const k = `${e.name}\u0000${e.inputHash}`
        const list = this.byNameHash.get(k)
        if (list === undefined) this.byNameHash.set(k, [e])
        else list.push(e)
      }
    }
    return this.byNameHash.get(`${name}\u0000${inputHash}`)?.find((e) => !this.claimed.has(e.stepId))
  }

  private serve<I, O, E, R>(
    step: Step<I, O, E, R>,
    entry: Journal.StepEntry,
    input: I,
    inputHash: string,
    reorderedAs: string | undefined
  ): Effect.Effect<O, StepError, R> {
    const output = entry.completed === undefined
      ? Either.right(undefined)
      : Journal.readOutput(entry.completed.output, this.config.bodies)
    if (Either.isLeft(output)) {
      // The log is damaged here: stop as on a store failure, undoing nothing; the error names the event.
      this.abort ??= output.left
      return Effect.interrupt
    }
    const decoded = step.codec.decodeOutput(output.right)
    if (Either.isLeft(decoded)) {
      const message = `the journaled output of step ${entry.stepId} no longer decodes with the step's output Schema: ${
        ParseResult.TreeFormatter.formatErrorSync(decoded.left)
      }`
      if (this.config.mode !== "execute") {
        return this.stop({ stepId: entry.stepId, name: step.name, outcome: "diverged", inputHash, message })
      }
      return Effect.fail(this.divergence(entry.stepId, entry.inputHash, inputHash, message))
    }
    this.claimed.add(entry.stepId)
    this.served.push(entry.stepId)
    if (this.config.mode === "execute") this.servedPending.push(entry.stepId)
    else {
      this.replayLog.push(
        reorderedAs === undefined
          ? { stepId: entry.stepId, name: step.name, outcome: "served", inputHash }
          : {
            stepId: reorderedAs,
            name: step.name,
            outcome: "reordered",
            servedFrom: entry.stepId,
            inputHash,
            message: `served from ${entry.stepId}: concurrent calls of ${step.name} started in another order`
          }
      )
    }
    // A replay has no side effects, so nothing to undo; a resume or a rollback rebuilds the run's scope.
    if (this.config.mode === "replay") return Effect.succeed(decoded.right)
    return this.completed(step, entry.stepId, input, decoded.right)
  }

  /**
   * A step's completion stands (executed now or served): an irreversible step moves the run past its
   * pivot; a compensable one registers its compensation in the run's scope, released in reverse order.
   */
  private completed<I, O, E, R>(step: Step<I, O, E, R>, stepId: string, input: I, output: O): Effect.Effect<O, never, R> {
    if (step.irreversible) this.pivot ??= stepId
    const compensate = step.compensate
    if (compensate === undefined || step.keepOnRollback) return Effect.succeed(output)
    this.compensable.push(stepId)
    return Effect.acquireRelease(
      Effect.succeed(output),
      (_, exit) =>
        // Only a failed run is undone: an interrupted one (lease lost, caller gone) is resumed elsewhere.
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) && this.pivot === undefined &&
          this.attention === undefined && this.config.mode !== "replay"
          ? this.compensate(step, compensate, stepId, input, output)
          : Effect.void
    ).pipe(Scope.extend(this.config.scope))
  }

  /** Run one compensation to effect: journaled, retried on `Transient` by the step's own policy. */
  private compensate<I, O, E, R>(
    step: Step<I, O, E, R>,
    compensate: (output: O, input: I, context: CompensationContext) => Effect.Effect<void, unknown, R>,
    stepId: string,
    input: I,
    output: O
  ): Effect.Effect<void, never, R> {
    return Effect.gen(this, function*() {
      let attempt = 0
      let startedAt: number | undefined
      yield* this.append([Event.make(Event.CompensationStarted, { at: yield* Clock.currentTimeMillis, stepId, attempt: 1 })])
      while (true) {
        attempt += 1
        const now = yield* Clock.currentTimeMillis
        startedAt ??= now
        const exit = yield* Effect.exit(compensate(output, input, {
          runId: this.config.runId,
          stepId,
          attempt,
          idempotencyKey: `${this.config.runId}/${stepId}/compensate`
        }))
        const at = yield* Clock.currentTimeMillis
        if (Exit.isSuccess(exit)) {
          yield* this.append([Event.make(Event.CompensationCompleted, { at, stepId, attempt })])
          this.compensated.add(stepId)
          return
        }
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        const failure = classifyCause(exit.cause, undefined)
        const decision = RetryPolicy.decide(step.compensateRetry, {
          failure,
          attempt,
          elapsed: Duration.millis(at - startedAt),
          random: yield* Random.next
        })
        yield* this.append([
          Event.make(Event.CompensationFailed, {
            at,
            stepId,
            attempt,
            failure,
            ...(decision._tag === "Retry" ? { retryDelayMs: Duration.toMillis(decision.delay) } : {})
          })
        ])
        if (decision._tag === "GiveUp") {
          // Stop undoing: what is left, this step first, waits for `Engine.rollback` after a fix.
          const pending = this.compensable.filter((id) => !this.compensated.has(id)).reverse()
          this.attention = {
            reason: `the compensation of step ${stepId} failed (${failure.reason}); ${decision.reason}`,
            pending
          }
          return
        }
        yield* Effect.sleep(decision.delay)
      }
    })
  }

  private diverged<I, O, E, R>(
    step: Step<I, O, E, R>,
    stepId: string,
    entry: Journal.StepEntry,
    input: I,
    inputHash: string
  ): Effect.Effect<O, StepError, R> {
    const message =
      `step ${stepId} was journaled with input hash ${entry.inputHash} but is now called with ${inputHash}: the pipeline's code or input changed since the run`
    if (this.config.mode !== "execute") {
      return this.stop({ stepId, name: step.name, outcome: "diverged", inputHash, expectedInputHash: entry.inputHash, message })
    }
    if (this.config.reexecuteDiverged && !this.claimed.has(stepId)) {
      return this.execute(step, input, stepId, inputHash, entry)
    }
    return Effect.fail(this.divergence(
      stepId,
      entry.inputHash,
      inputHash,
      `${message}; resume with re-execution of diverged steps to run it again`
    ))
  }

  private duplicate(name: string, key: string | undefined): DuplicateStepName {
    const stepId = key === undefined ? `${name}#${this.occurrences.get(name) ?? 0}` : `${name}[${key}]`
    return new DuplicateStepName({
      runId: this.config.runId,
      name,
      stepId,
      message:
        `two different steps are named "${name}" in run ${this.config.runId}: their journal entries would be mistaken for each other; give each Step.make its own name (calling one step value twice is fine)`
    })
  }

  private divergence(stepId: string, expected: string, actual: string, message: string): StepDiverged {
    return new StepDiverged({
      runId: this.config.runId,
      stepId,
      expectedInputHash: expected,
      actualInputHash: actual,
      message
    })
  }

  private stop(entry: ReplayEntry): Effect.Effect<never> {
    this.replayLog.push(entry)
    this.abort ??= new ReplayStopped(entry)
    return Effect.interrupt
  }

  private execute<I, O, E, R>(
    step: Step<I, O, E, R>,
    input: I,
    stepId: string,
    inputHash: string,
    prior: Journal.StepEntry | undefined
  ): Effect.Effect<O, StepError, R> {
    const sameInput = prior !== undefined && prior.completed === undefined && prior.inputHash === inputHash
    // Attempts are numbered on across processes; the retry budget carries over a crash for the same input.
    let attempt = prior?.failedAttempts ?? 0
    let budgetAttempts = sameInput ? prior.budget.attempts : 0
    let budgetStartedAt = sameInput ? prior.budget.startedAt : undefined
    let drifts = sameInput ? prior.budget.drifts : 0
    const retryAt = sameInput ? prior.retryAt : undefined
    const idempotencyKey = `${this.config.runId}/${stepId}`
    return Effect.gen(this, function*() {
      if (step.irreversible && prior?.inDoubt !== undefined) {
        const reconciled = yield* this.reconcile(step, input, stepId, inputHash, prior.inDoubt.attempt, idempotencyKey)
        if (Option.isSome(reconciled)) return reconciled.value
      }
      if (retryAt !== undefined) {
        // A previous process scheduled this retry: keep its backoff.
        const now = this.config.clock.unsafeCurrentTimeMillis()
        if (retryAt > now) yield* Effect.sleep(Duration.millis(retryAt - now))
      }
      while (true) {
        attempt += 1
        const startedAt = this.config.clock.unsafeCurrentTimeMillis()
        budgetStartedAt ??= startedAt
        if (startedAt >= this.leaseExpiresAt) {
          // This worker was stopped (or starved) past its lease: another may own the run. Start nothing.
          this.abort ??= new LeaseLost({
            runId: this.config.runId,
            token: this.config.token,
            message: `the lease of run ${this.config.runId} ran out before step ${stepId} could start`
          })
          return yield* Effect.interrupt
        }
        // A paid step checks the run's budget before each attempt: an attempt that would pass it is never made.
        const reservation = this.budget?.reserve(step, input, stepId) ?? noReservation
        if (reservation instanceof BudgetExceeded) {
          const failure = Failure.classify(reservation)
          this.failedStep.set(failure, stepId)
          return yield* Effect.fail(failure)
        }
        if (step.irreversible) {
          // Durable before the body runs: a crash from here on leaves the step in doubt, never blindly re-sent.
          yield* this.append([
            Event.make(Event.StepStarted, { at: startedAt, stepId, name: step.name, inputHash, attempt, idempotencyKey })
          ])
        }
        const usage: Array<Usage> = []
        const findings: Array<Finding> = []
        const context: StepContext = {
          runId: this.config.runId,
          stepId,
          attempt,
          idempotencyKey,
          reportUsage: (u) => Effect.sync(() => void usage.push(u)),
          reportFinding: (f) => Effect.sync(() => void findings.push(f))
        }
        const body = Effect.exit(step.run(input, context))
        const exit = yield* (reservation === noReservation
          ? body
          : Effect.ensuring(body, Effect.sync(() => this.budget?.release(reservation))))
        let failure: Failure.Failure
        if (Exit.isSuccess(exit)) {
          const encoded = step.codec.encodeOutput(exit.value)
          const lost = Either.isRight(encoded) ? JournalSafe.check(encoded.right, step.codec.decodeOutput) : undefined
          if (Either.isRight(encoded) && lost === undefined) {
            const at = this.config.clock.unsafeCurrentTimeMillis()
            yield* this.append([
              Event.make(Event.StepCompleted, {
                at,
                stepId,
                name: step.name,
                inputHash,
                attempt,
                startedAt,
                output: encoded.right,
                ...(usage.length > 0 ? { usage } : {})
              }),
              ...(findings.length > 0 ? findingEvents(findings, at, stepId, step.name, attempt) : [])
            ])
            this.budget?.addSpent(usage)
            this.claimed.add(stepId)
            return yield* this.completed(step, stepId, input, exit.value)
          }
          failure = Either.isLeft(encoded)
            ? Failure.deterministic(
              `step ${stepId} returned an output that does not match its Schema: ${
                ParseResult.TreeFormatter.formatErrorSync(encoded.left)
              }`,
              { rule: "schema" }
            )
            : journalLoss(`step ${stepId}`, lost ?? "")
        } else if (Cause.isInterruptedOnly(exit.cause)) {
          return yield* Effect.interrupt
        } else {
          failure = classifyCause(exit.cause, step.classify)
        }
        const at = this.config.clock.unsafeCurrentTimeMillis()
        let decision: RetryPolicy.Decision
        if (failure.rule === "schema-drift") {
          // The reply's structure drifted from the Schema: retried at once, up to the step's own cap, apart
          // from the retry policy (which is for a server that may heal). Past the cap it is Deterministic, so
          // that a redelivery of the run does not pay for the same drift again.
          drifts += 1
          if (failure._tag === "Transient" && drifts <= step.driftCap) {
            decision = { _tag: "Retry", delay: Duration.zero }
          } else {
            const reason = `drift cap reached (${drifts} drifted replies; driftCap ${step.driftCap})`
            decision = { _tag: "GiveUp", reason }
            failure = Failure.deterministic(
              `${failure.reason}; ${reason}: fix the prompt or the output Schema, then resume the run`,
              { rule: "schema-drift", ...(failure.cause !== undefined ? { cause: failure.cause } : {}) }
            )
          }
        } else {
          decision = RetryPolicy.decide(step.retry, {
            failure,
            attempt: budgetAttempts + 1,
            elapsed: Duration.millis(at - budgetStartedAt),
            random: yield* Random.next
          })
          budgetAttempts += 1
        }
        yield* this.append([
          Event.make(Event.StepAttemptFailed, {
            at,
            stepId,
            name: step.name,
            inputHash,
            attempt,
            startedAt,
            failure,
            ...(decision._tag === "Retry"
              ? { retryDelayMs: Duration.toMillis(decision.delay) }
              : { giveUp: decision.reason }),
            ...(usage.length > 0 ? { usage } : {})
          }),
          ...(findings.length > 0 ? findingEvents(findings, at, stepId, step.name, attempt) : [])
        ])
        this.budget?.addSpent(usage)
        if (decision._tag === "GiveUp") {
          this.failedStep.set(failure, stepId)
          return yield* Effect.fail(failure)
        }
        yield* Effect.sleep(decision.delay)
      }
    })
  }

  /**
   * An irreversible step was started by a worker that died before it completed. Ask `reconcile` whether
   * it happened; without one, the run needs a person. `None`: not sent, so it may run again.
   */
  private reconcile<I, O, E, R>(
    step: Step<I, O, E, R>,
    input: I,
    stepId: string,
    inputHash: string,
    attempt: number,
    idempotencyKey: string
  ): Effect.Effect<Option.Option<O>, StepError, R> {
    return Effect.gen(this, function*() {
      if (step.reconcile === undefined) {
        const reason =
          `irreversible step ${stepId} was started (attempt ${attempt}, idempotency key ${idempotencyKey}) but its worker stopped before recording the outcome, and the step has no reconcile: check whether it happened, then resume or roll back by hand`
        this.pivot ??= stepId
        this.attention = { reason, pending: [stepId] }
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
      const encoded = step.codec.encodeOutput(found.value.value)
      const lost = Either.isRight(encoded) ? JournalSafe.check(encoded.right, step.codec.decodeOutput) : undefined
      if (lost !== undefined) return yield* Effect.fail(journalLoss(`the reconcile of step ${stepId}`, lost))
      if (Either.isLeft(encoded)) {
        return yield* Effect.fail(Failure.deterministic(
          `the reconcile of step ${stepId} returned a value that does not match the step's output Schema: ${
            ParseResult.TreeFormatter.formatErrorSync(encoded.left)
          }`,
          { rule: "schema" }
        ))
      }
      const at = yield* Clock.currentTimeMillis
      yield* this.append([
        Event.make(Event.StepCompleted, { at, stepId, name: step.name, inputHash, attempt, startedAt, output: encoded.right })
      ])
      this.claimed.add(stepId)
      return Option.some(yield* this.completed(step, stepId, input, found.value.value))
    })
  }

  /**
   * Append events (with any pending served-step marks) under the run's fencing token. If the store
   * refuses (another worker took the run, or the disk failed), the execution stops: nothing after it runs.
   */
  append(events: ReadonlyArray<Event.Event>, patch?: RunPatch, durable = true): Effect.Effect<void> {
    return Effect.suspend(() => {
      // A rollback keeps appending (its compensations) after the replay that rebuilt its scope stopped.
      if (this.abort !== undefined && this.abort._tag !== "ReplayStopped") return Effect.interrupt
      const first = events[0]
      const withServed = this.servedPending.length > 0 && first !== undefined
        ? [Event.make(Event.StepsServed, { at: first.at, stepIds: this.servedPending }), ...events]
        : events
      this.servedPending = []
      return this.config.store.append({
        runId: this.config.runId,
        token: this.config.token,
        events: withServed.map(Event.encode),
        now: first?.at ?? 0,
        durable,
        alone: this.config.alone(this),
        ...(patch !== undefined ? { patch } : {})
      }).pipe(
        Effect.asVoid,
        Effect.catchAll((error) => {
          this.abort ??= error
          return Effect.interrupt
        })
      )
    })
  }
}


/**
 * An output that would not come back from the journal as it went in: failing now, on the first run, is
 * what keeps a resume from serving a changed value or calling it a divergence later.
 */
export const journalLoss = (what: string, why: string): Failure.Deterministic =>
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

/** Classify what a step attempt failed with: its typed error (by the step's own rule) or a defect. */
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
