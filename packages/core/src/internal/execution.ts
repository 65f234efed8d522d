/**
 * One execution of a run: the pipeline's code runs against the run's journal under one of three modes,
 * and the engine gets back one value — how the program ended (`Outcome`) — then, closing the run's scope,
 * what the undo did (`Settled`). Its state (claims, pivot, compensations, why it stopped) stays inside.
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as ParseResult from "effect/ParseResult"
import * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { ReplayEntry } from "../Engine.js"
import * as Event from "../Event.js"
import type { AppendRequest, EventStoreService, RunPatch } from "../EventStore.js"
import * as Journal from "../Journal.js"
import { RunContext, type RunContextService } from "../RunContext.js"
import type { Definition, StepError } from "../StepDefinition.js"
import type { BudgetTracker } from "./budget.js"
import { compensate } from "./compensation.js"
import type { Holder, Leases } from "./leases.js"
import { Calls } from "./matching.js"
import type { Host, Mode } from "./modes.js"
import type { Attention, Stop } from "./runOps.js"
import * as Tracing from "./tracing.js"
import { outcomeOf, type Outcome, type Progress, type Settled, type Stopped } from "./outcome.js"

export interface Config {
  readonly runId: string
  readonly key: string
  readonly pipeline: string
  readonly mode: Mode
  readonly reexecuteDiverged: boolean
  readonly state: Journal.RunState
  /** The bodies of the completions the state was folded without (`EventStore.readBodies`), by seq. */
  readonly bodies: ReadonlyMap<number, string>
  readonly store: EventStoreService
  readonly leases: Leases
  readonly token: number
  readonly leaseExpiresAt: number
  readonly clock: Clock.Clock
  readonly budget: BudgetTracker | undefined
  /** The run's worker died mid-run (a rollback of a crash, not of a known failure). */
  readonly crashed: boolean
}

export class Execution implements Host {
  private readonly calls: Calls
  private readonly scope: Scope.CloseableScope
  private readonly served: Array<string> = []
  private readonly replayLog: Array<ReplayEntry> = []
  private servedPending: Array<string> = []
  private readonly failedSteps = new WeakMap<object, string>()
  private readonly compensable: Array<string> = []
  private readonly compensated: Array<string> = []
  private stopped: Stopped | undefined
  private pivot: string | undefined
  private attention: Attention | undefined
  private leaseUntil: number
  private span: Tracer.AnySpan | undefined
  private tracedRun = false
  private rollForward: boolean
  /** The fiber the pipeline's own code runs in: calls from other fibers are in a concurrent section. */
  private root = -1
  private readonly context: RunContextService
  /** This execution's registration with the lease keeper. */
  private readonly holder: Holder
  readonly runId: string
  readonly token: number
  readonly clock: Clock.Clock
  readonly budget: BudgetTracker | undefined
  readonly reexecuteDiverged: boolean

  constructor(private readonly config: Config, scope: Scope.CloseableScope) {
    this.scope = scope
    this.runId = config.runId
    this.token = config.token
    this.clock = config.clock
    this.budget = config.budget
    this.reexecuteDiverged = config.reexecuteDiverged
    this.leaseUntil = config.leaseExpiresAt
    this.rollForward = config.mode.name === "rollback" && config.crashed
    this.calls = new Calls(config.runId, config.state.steps)
    this.holder = {
      runId: config.runId,
      token: config.token,
      renewed: (at) => void (this.leaseUntil = at),
      lost: (error) => void (this.stopped ??= error)
    }
    this.context = {
      runId: config.runId,
      key: config.key,
      pipeline: config.pipeline,
      mode: config.mode.name,
      call: (step, input, key) => this.call(step, input, key)
    }
  }

  /** `effect` in this run's context, without its lease (a preflight). */
  within<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, RunContext>> {
    return Effect.provideService(effect, RunContext, this.context)
  }

  /**
   * Run the pipeline's program (under the run's lease unless replaying); how it ended. The program is made
   * in the run's fiber: a pipeline's `run` that throws instead of returning an effect fails the run.
   */
  run<A, E, R>(program: () => Effect.Effect<A, E, R>): Effect.Effect<Outcome<A>, never, Exclude<R, RunContext>> {
    const entered = this.within(Effect.withFiberRuntime<A, E, R>((fiber) => {
      this.root = fiber.id().id
      return program()
    }))
    const exited = this.config.mode.holdsLease
      ? this.config.leases.hold(this.holder, entered)
      : Effect.exit(entered)
    // Traced or not, once per run; the run's span: the compensations are its children, whichever step
    // registered them.
    return Tracing.current((traced, span) => {
      this.tracedRun = traced
      this.span = span
      return Effect.map(exited, (exit) => outcomeOf(exit, this.stopped, this.progress(), this.failedSteps))
    })
  }

  /** Journal events under the run's fencing token (the engine's own: the run's outcome). */
  journal(events: ReadonlyArray<Event.Event>, patch?: RunPatch, durable = true): Effect.Effect<void, Stop> {
    return Effect.suspend(() => {
      const stopped = this.insideStop()
      if (stopped !== undefined) return Effect.fail(stopped)
      return Effect.asVoid(this.config.store.append(this.request(events, patch, durable)))
    })
  }

  /** The store's request for `events`, after the marks of the steps served since the last append. */
  private request(events: ReadonlyArray<Event.Event>, patch?: RunPatch, durable = true): AppendRequest {
    const first = events[0]
    const withServed = this.servedPending.length > 0 && first !== undefined
      ? [Event.make(Event.StepsServed, { at: first.at, stepIds: this.servedPending }), ...events]
      : events
    this.servedPending = []
    return {
      runId: this.runId,
      token: this.token,
      events: withServed.map(Event.encode),
      now: first?.at ?? 0,
      durable,
      alone: this.config.leases.alone(this.holder),
      ...(patch !== undefined ? { patch } : {})
    }
  }

  /** Close the run's scope with `exit`: a failure runs the registered compensations, latest first. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<Settled, Stop> {
    return Scope.close(this.scope, exit).pipe(
      Effect.zipRight(Effect.suspend(() => this.failIfStopped())),
      Effect.zipRight(Effect.sync(() => this.settled()))
    )
  }

  // --- Host (what modes and step code may ask) ---

  get traced(): boolean {
    return this.tracedRun
  }
  readonly leaseExpiresAt = () => this.leaseUntil
  readonly isClaimed = (stepId: string) => this.calls.isClaimed(stepId)
  readonly markServed = (stepId: string) => void this.servedPending.push(stepId)
  readonly log = (entry: ReplayEntry) => void this.replayLog.push(entry)
  readonly failedAt = (failure: object, stepId: string) => void this.failedSteps.set(failure, stepId)
  readonly takeRollForward = () => {
    const once = this.rollForward
    this.rollForward = false
    return once
  }
  readonly inDoubt = (stepId: string, attention: Attention) => {
    this.pivot ??= stepId
    this.attention = attention
  }

  readonly append = (events: ReadonlyArray<Event.Event>): Effect.Effect<void> =>
    Effect.suspend(() => this.appendThen(events, () => Effect.void))

  readonly appendThen = <A, E, R>(
    events: ReadonlyArray<Event.Event>,
    next: () => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const stopped = this.insideStop()
    if (stopped !== undefined) return this.stop(stopped)
    return Effect.matchEffect(this.config.store.append(this.request(events)), {
      onFailure: (reason) => this.stop(reason),
      onSuccess: next
    })
  }

  readonly stop = (reason: Stop): Effect.Effect<never> =>
    Effect.suspend(() => {
      this.stopped ??= reason
      return Effect.interrupt
    })

  readonly stopAt = (entry: ReplayEntry): Effect.Effect<never> =>
    Effect.suspend(() => {
      this.replayLog.push(entry)
      this.stopped ??= { _tag: "ReplayStopped", entry }
      return Effect.interrupt
    })

  readonly completed = <I, O, E, R>(step: Definition<I, O, E, R>, stepId: string, input: I, output: O): Effect.Effect<O, never, R> => {
    this.calls.claim(stepId)
    if (step.irreversible) this.pivot ??= stepId
    const undo = step.compensate
    if (undo === undefined || step.keepOnRollback || !this.config.mode.rebuildsScope) return Effect.succeed(output)
    this.compensable.push(stepId)
    return Effect.acquireRelease(Effect.succeed(output), (_, exit) => {
      // Only a failed run is undone (an interrupted one — lease lost, caller gone — is resumed elsewhere),
      // and not past its pivot, nor once a compensation gave up.
      const undoing = Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) && this.pivot === undefined &&
        this.attention === undefined
      if (!undoing) return Effect.void
      return Effect.map(
        compensate<R>({
          runId: this.runId,
          stepId,
          policy: step.compensateRetry,
          undo: (context) => undo(output, input, context),
          append: this.append,
          traced: this.traced,
          span: this.span
        }),
        (done) => {
          if (done._tag === "Compensated") this.compensated.push(stepId)
          // Stop undoing: what is left, this step first, waits for `Engine.rollback` after a fix.
          else this.attention = { reason: done.reason, pending: this.pending() }
        }
      )
    }).pipe(Scope.extend(this.scope))
  }

  /** A step call inside the pipeline: serve it from the journal, or leave it to the mode. */
  call<I, O, E, R>(step: Definition<I, O, E, R>, input: I, key: string | undefined): Effect.Effect<O, StepError, R> {
    return Effect.withFiberRuntime((fiber) => {
      if (this.stopped !== undefined) return Effect.interrupt
      // Only an occurrence-numbered call made off the pipeline's own fiber (inside `Effect.all`, a fork) may
      // be served another occurrence's completion: there, the order of calls may really differ between runs.
      const resolved = this.calls.resolve(step, input, key, fiber.id().id !== this.root)
      if (resolved._tag === "Refused") return Effect.fail(resolved.error)
      const { inputHash, match, stepId } = resolved
      const call = { step, input, stepId, inputHash }
      const mode = this.config.mode
      let effect: Effect.Effect<O, StepError, R>
      switch (match._tag) {
        case "Served":
          effect = this.serve(call, match.entry, match.reordered)
          break
        case "Diverged":
          effect = mode.diverged(this, call, match.entry, {
            decodes: true,
            message:
              `step ${stepId} was journaled with input hash ${match.entry.inputHash} but is now called with ${inputHash}: the pipeline's code or input changed since the run`
          })
          break
        case "Execute":
          effect = mode.unserved(this, call, match.prior)
      }
      return this.traced ? Tracing.stepSpan(this.runId, stepId, step.name, match)(effect) : effect
    })
  }

  private serve<I, O, E, R>(
    call: { readonly step: Definition<I, O, E, R>; readonly input: I; readonly stepId: string; readonly inputHash: string },
    entry: Journal.StepEntry,
    reordered: boolean
  ): Effect.Effect<O, StepError, R> {
    const output = entry.completed === undefined
      ? Either.right(undefined)
      : Journal.readOutput(entry.completed.output, this.config.bodies)
    // The log is damaged here: stop as on a store failure, undoing nothing; the error names the event.
    if (Either.isLeft(output)) return this.stop(output.left)
    const decoded = call.step.codec.decodeOutput(output.right)
    if (Either.isLeft(decoded)) {
      return this.config.mode.diverged(this, call, entry, {
        decodes: false,
        message: `the journaled output of step ${entry.stepId} no longer decodes with the step's output Schema: ${
          ParseResult.TreeFormatter.formatErrorSync(decoded.left)
        }`
      })
    }
    this.served.push(entry.stepId)
    this.config.mode.served(this, call, entry, reordered)
    return this.completed(call.step, entry.stepId, call.input, decoded.right)
  }

  private pending(): Array<string> {
    return this.compensable.filter((id) => !this.compensated.includes(id)).reverse()
  }

  private failIfStopped(): Effect.Effect<void, Stop> {
    const stopped = this.insideStop()
    return stopped === undefined ? Effect.void : Effect.fail(stopped)
  }

  /** Why the execution was stopped from inside (a `Stop`), if it was: a replay that stopped at a call was not. */
  private insideStop(): Stop | undefined {
    const stopped = this.stopped
    return stopped === undefined || stopped._tag === "ReplayStopped" ? undefined : stopped
  }

  private progress(): Progress {
    return { pivot: this.pivot, attention: this.attention, compensable: this.compensable }
  }

  private settled(): Settled {
    return { ...this.progress(), compensated: this.compensated, served: this.served, log: this.replayLog }
  }
}
