/**
 * What a step is, apart from calling it: its definition (name, Schemas, policies, body), what its body and
 * its compensation know about themselves, and the ways a call can fail. The engine executes definitions;
 * `Step.ts` makes them callable inside a pipeline. Kept apart so that `RunContext` (which executes a step)
 * and `Step` (which needs a `RunContext`) do not import each other.
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Failure from "./Failure.js"
import type * as RetryPolicy from "./RetryPolicy.js"
import type { Usage } from "./Usage.js"

/** What a step's body knows about the attempt it is running. */
export interface StepContext {
  readonly runId: string
  /** The step's identity in its run: `name#occurrence`, or `name[key]` for keyed calls. */
  readonly stepId: string
  /** 1 for the first attempt; numbered on across retries, resumes and processes. */
  readonly attempt: number
  /** Stable across attempts and processes (`runId/stepId`): pass it to providers that deduplicate. */
  readonly idempotencyKey: string
  /** Record the tokens this attempt spent; they are journaled with the attempt, whatever its outcome. */
  readonly reportUsage: (usage: Usage) => Effect.Effect<void>
  /**
   * Record something worth a look (e.g. `ContextOverCeiling`); journaled as a `StepFinding` event in the
   * same append as the attempt's outcome, whatever it is.
   */
  readonly reportFinding: (finding: Finding) => Effect.Effect<void>
}

/** An observation about one attempt, journaled with it: a waste pattern, a guard that tripped. */
export interface Finding {
  /** What kind of finding, e.g. `ContextOverCeiling`. */
  readonly kind: string
  readonly message: string
  /** The limit that was passed, and the value seen (e.g. a token ceiling and the input tokens). */
  readonly limit?: number
  readonly actual?: number
}

/** What a paid step expects to spend: checked against the run's budget before its body runs. */
export interface Estimate {
  readonly model: string
  readonly inputTokens: number
  readonly outputTokens: number
}

/**
 * The ways a step call can fail inside a pipeline: its classified failure, a divergence from the journal,
 * a duplicate step name, or its run's budget refusing the call before it is made.
 */
export type StepError = Failure.Failure | StepDiverged | DuplicateStepName | BudgetExceeded

/** The journal holds a completion for this step identity with another input: the code changed. */
export class StepDiverged extends Schema.TaggedError<StepDiverged>()("StepDiverged", {
  runId: Schema.String,
  stepId: Schema.String,
  /** The input hash the journal recorded, or absent when the journal has no such step. */
  expectedInputHash: Schema.optional(Schema.String),
  actualInputHash: Schema.String,
  message: Schema.String
}) {}

/**
 * Two different steps (two `Step.make` values) share one name in a run: their journal entries would be
 * mistaken for each other. Refused at the second one's first call; the same step called twice is fine.
 */
export class DuplicateStepName extends Schema.TaggedError<DuplicateStepName>()("DuplicateStepName", {
  runId: Schema.String,
  /** The shared name, and the id the second step's call would have had. */
  name: Schema.String,
  stepId: Schema.String,
  message: Schema.String
}) {}

/** What a compensation knows about itself. */
export interface CompensationContext {
  readonly runId: string
  readonly stepId: string
  readonly attempt: number
  /** Stable across attempts and processes: `runId/stepId/compensate`. */
  readonly idempotencyKey: string
}

/** The step's Schemas compiled once: encoding validates, decoding serves journaled outputs. */
export interface Codec<I, O> {
  readonly encodeInput: (input: I) => Either.Either<unknown, ParseResult.ParseError>
  readonly encodeOutput: (output: O) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeOutput: (encoded: unknown) => Either.Either<O, ParseResult.ParseError>
}

/** A step's definition: everything the engine needs to execute, serve, retry and undo it. */
export interface Definition<I, O, E, R> {
  readonly name: string
  readonly codec: Codec<I, O>
  readonly retry: RetryPolicy.RetryPolicy
  readonly classify: ((error: E) => Failure.Failure) | undefined
  readonly run: (input: I, context: StepContext) => Effect.Effect<O, E, R>
  readonly compensate: ((output: O, input: I, context: CompensationContext) => Effect.Effect<void, unknown, R>) | undefined
  readonly compensateRetry: RetryPolicy.RetryPolicy
  readonly keepOnRollback: boolean
  readonly irreversible: boolean
  readonly reconcile: ((input: I, idempotencyKey: string) => Effect.Effect<Option.Option<O>, unknown, R>) | undefined
  readonly estimate: ((input: I) => Estimate) | undefined
  readonly driftCap: number
}

const forbidden = /[#[\]\s/]/

/** Check a step name or key; the message says what is wrong and what to do. */
export const validateName = (what: "step name" | "step key" | "pipeline name", value: string): string | undefined =>
  value.length === 0
    ? `${what} must not be empty`
    : value.length > 200
    ? `${what} "${value.slice(0, 40)}…" is longer than 200 characters`
    : forbidden.test(value)
    ? `${what} "${value}" contains one of '#', '[', ']', '/' or whitespace; they delimit step ids in the log: use letters, digits, '-', '_', '.' or ':'`
    : undefined

/**
 * A step would pass its run's budget: it is refused before it is called (nothing is paid). Raised at the
 * step's call; journaled (by `Failure.classify`) as a `Deterministic` with rule `budget`, its cause named
 * `BudgetExceeded` with the measure (`usd` or `inputTokens`) as its code. `message` says what to do.
 */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  runId: Schema.String,
  /** The step that was not called. */
  stepId: Schema.String,
  /** The part of the budget that would be passed (or could not be checked). */
  measure: Schema.Literal("usd", "inputTokens"),
  /** The run's budget in that measure. */
  limit: Schema.Number,
  /** What the run had spent (and held for attempts in flight) before this call, when it was counted. */
  spent: Schema.optional(Schema.Number),
  /** What this call was estimated to spend, when it could be. */
  estimated: Schema.optional(Schema.Number),
  /** What happened and what to do. */
  message: Schema.String
}) {
  [Failure.toFailure](): Failure.Deterministic {
    return Failure.deterministic(`BudgetExceeded: ${this.message}`, {
      rule: "budget",
      cause: new Failure.ErrorInfo({ name: "BudgetExceeded", message: this.message, code: this.measure })
    })
  }
}
