/**
 * A durable step: a name, Schemas for its input and output, a retry policy and the Effect that does the
 * work. Called inside a pipeline it is journaled: a completed step is served from the log, never re-run.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Failure from "./Failure.js"
import * as RetryPolicy from "./RetryPolicy.js"
import { RunContext } from "./RunContext.js"
import {
  type CompensationContext,
  type Definition,
  type Estimate,
  type StepContext,
  type StepError,
  validateName
} from "./StepDefinition.js"

export {
  BudgetExceeded,
  type Codec,
  type CompensationContext,
  type Definition,
  DuplicateStepName,
  type Estimate,
  type Finding,
  type StepContext,
  StepDiverged,
  type StepError,
  validateName
} from "./StepDefinition.js"

export interface Options<I, IE, O, OE, E, R> {
  /** Unique within a pipeline; with the call's occurrence (or `key`) it identifies the step in the log. */
  readonly name: string
  /** The input Schema: the input is encoded with it and hashed, so a changed input is detected. */
  readonly input?: Schema.Schema<I, IE, never>
  /** The output Schema: the output is journaled encoded and decoded when served from the log. */
  readonly output: Schema.Schema<O, OE, never>
  /** Retries for `Transient` failures only. Default: `RetryPolicy.defaultPolicy`. */
  readonly retry?: RetryPolicy.RetryPolicy
  /** Turn this step's own errors into `Transient` or `Deterministic`. Default: `Failure.classify`. */
  readonly classify?: (error: E) => Failure.Failure
  readonly run: (input: I, context: StepContext) => Effect.Effect<O, E, R>
  /**
   * Undo the step's effect when the run fails: run in reverse completion order, journaled, retried on
   * `Transient` by `compensateRetry`. Pass `context.idempotencyKey` on to the provider.
   */
  readonly compensate?: (output: O, input: I, context: CompensationContext) => Effect.Effect<void, unknown, R>
  /** Retries of the compensation. Default: `RetryPolicy.defaultPolicy`. */
  readonly compensateRetry?: RetryPolicy.RetryPolicy
  /**
   * Keep the step's journaled output when the run rolls back (paid inference): a later attempt of the
   * same key is served it instead of paying again. Steps without `compensate` are always kept.
   */
  readonly keepOnRollback?: boolean
  /**
   * A step that cannot be undone or safely repeated (an e-mail, a payment). Its start is made durable
   * before its body runs; a crash between start and completion is resolved by `reconcile`, or leaves
   * the run `needs_attention` — never a blind second send. Once it completes, the run is past its
   * pivot: earlier steps are no longer compensated.
   */
  readonly irreversible?: boolean
  /**
   * For an irreversible step found started but not completed: did it happen? `Some(output)` journals it
   * as completed; `None` runs the step again with the same idempotency key.
   */
  readonly reconcile?: (input: I, idempotencyKey: string) => Effect.Effect<Option.Option<O>, unknown, R>
  /**
   * What an attempt will spend, at most (a paid step: an LLM call). With a run budget, the runner adds it
   * to what the run has spent so far and fails the step `Deterministic` (rule `budget`) *before* the body
   * runs when the sum would pass the budget. Steps without an estimate are not stopped by the budget.
   */
  readonly estimate?: (input: I) => Estimate
  /**
   * How many times a reply whose structure drifted from the expected Schema (a failure with rule
   * `schema-drift`) is retried, at once and apart from `retry`'s attempts. Past it, the step fails
   * `Deterministic`: paying again for the same drift is what a redelivery must not do. Default 1.
   */
  readonly driftCap?: number
}

export interface CallOptions {
  /** An explicit identity for dynamic fan-out: `name[key]` instead of `name#occurrence`. */
  readonly key?: string
}

/** A step value: its definition, callable with its input inside a pipeline to get an Effect. */
export interface Step<I, O, E, R> extends Definition<I, O, E, R> {
  (input: I, options?: CallOptions): Effect.Effect<O, StepError, R | RunContext>
}

const noInput: Either.Either<unknown, ParseResult.ParseError> = Either.right(null)

/**
 * Define a step. Throws at definition time if the name is unusable: that is a bug in the pipeline's code,
 * found when the module loads, before any run.
 */
export function make<I, IE, O, OE, E, R>(options: Options<I, IE, O, OE, E, R> & { readonly input: Schema.Schema<I, IE, never> }): Step<I, O, E, R>
export function make<O, OE, E, R>(options: Options<void, void, O, OE, E, R>): Step<void, O, E, R>
export function make<I, IE, O, OE, E, R>(options: Options<I, IE, O, OE, E, R>): Step<I, O, E, R> {
  const problem = validateName("step name", options.name)
  if (problem !== undefined) throw new Error(`Step.make: ${problem}`)
  if (options.irreversible === true && options.compensate !== undefined) {
    throw new Error(
      `Step.make: step "${options.name}" is irreversible and has a compensate; an irreversible step cannot be undone. Remove compensate (later failures go forward or to needs_attention), or drop irreversible if the effect can really be undone`
    )
  }
  if (options.driftCap !== undefined && !(Number.isInteger(options.driftCap) && options.driftCap >= 0)) {
    throw new Error(`Step.make: step "${options.name}" has driftCap ${options.driftCap}; it must be an integer >= 0`)
  }
  if (options.reconcile !== undefined && options.irreversible !== true) {
    throw new Error(`Step.make: step "${options.name}" has a reconcile but is not irreversible; reconcile is only consulted for irreversible steps`)
  }
  // A step without an input Schema takes no input, journaled as null.
  const encodeInput = options.input === undefined ? () => noInput : Schema.encodeEither(options.input)
  // One effect where `Effect.flatMap(RunContext, …)` is three (the tag, its lookup, the flatMap): a step call
  // is the engine's hottest path. Outside a run, the tag's own lookup fails as Effect words it.
  const call = (value: I, options?: CallOptions): Effect.Effect<O, StepError, R | RunContext> =>
    Effect.withFiberRuntime((fiber) => {
      const run = Context.getOption(fiber.currentContext, RunContext)
      return Option.isSome(run)
        ? run.value.call(self, value, options?.key)
        : Effect.flatMap(RunContext, (found) => found.call(self, value, options?.key))
    })
  // A function's own `name` is read-only: define it rather than assign it.
  Object.defineProperty(call, "name", { value: options.name })
  const self: Step<I, O, E, R> = Object.assign(call, {
    codec: {
      encodeInput,
      encodeOutput: Schema.encodeEither(options.output),
      decodeOutput: Schema.decodeUnknownEither(options.output)
    },
    retry: options.retry ?? RetryPolicy.defaultPolicy,
    classify: options.classify,
    run: options.run,
    compensate: options.compensate,
    compensateRetry: options.compensateRetry ?? RetryPolicy.defaultPolicy,
    keepOnRollback: options.keepOnRollback ?? false,
    irreversible: options.irreversible ?? false,
    reconcile: options.reconcile,
    estimate: options.estimate,
    driftCap: options.driftCap ?? 1
  })
  return self
}
