/**
 * A pipeline: a named, versioned program over steps. Its `run` is an ordinary Effect (usually
 * `Effect.gen`) that calls steps; the engine runs it under a journal so a retry never pays twice.
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { RunContext } from "./RunContext.js"
import { validateName } from "./StepDefinition.js"

export interface Options<I, IE, O, OE, E, R, RP = never> {
  /** Unique among the pipelines of a store: with the run key it identifies a run. */
  readonly name: string
  /** Bump it when the pipeline's behaviour changes; recorded on every run. */
  readonly version: string | number
  readonly input: Schema.Schema<I, IE, never>
  readonly output: Schema.Schema<O, OE, never>
  readonly run: (input: I) => Effect.Effect<O, E, R>
  /**
   * Checked before the steps of every execution (a new run or a resume): "the columns I write exist".
   * A failure is `Deterministic` and costs no step.
   */
  readonly preflight?: Effect.Effect<void, unknown, RP>
  /** After a crash, `Engine.recover` resumes the run (default) or rolls it back. */
  readonly onCrash?: "resume" | "rollback"
  /**
   * The storm breaker: after `threshold` consecutive runs of this version fail deterministically with the
   * same fingerprint, new runs are refused with `CircuitOpen`. Default 3; `false` turns it off.
   */
  readonly breaker?: { readonly threshold: number } | false
  /**
   * What one run may spend, in dollars (priced with the `Pricing` table) and/or input tokens. A step
   * with an `estimate` that would pass it fails with `BudgetExceeded` (journaled as a `Deterministic`, rule
   * `budget`) before it is called.
   * `Engine.run(..., { budget })` overrides it field by field.
   */
  readonly budget?: Budget
}

/** A per-run spending limit. Counted over every attempt of the run, across resumes and processes. */
export interface Budget {
  /** Dollars, priced with the `Pricing` table (the default table when none is provided). */
  readonly usd?: number | undefined
  /** Uncached input tokens (`Usage.inputTokens`), summed over the run's attempts. */
  readonly inputTokens?: number | undefined
}

/** A step would pass its run's budget (declared with the ways a step call can fail). */
export { BudgetExceeded } from "./StepDefinition.js"

/** The pipeline's Schemas compiled once. */
export interface Codec<I, O> {
  readonly encodeInput: (input: I) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeInput: (encoded: unknown) => Either.Either<I, ParseResult.ParseError>
  readonly encodeOutput: (output: O) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeOutput: (encoded: unknown) => Either.Either<O, ParseResult.ParseError>
}

export interface Pipeline<I, O, E, R> {
  readonly name: string
  readonly version: string
  readonly codec: Codec<I, O>
  readonly run: (input: I) => Effect.Effect<O, E, R>
  readonly preflight: Effect.Effect<void, unknown, R> | undefined
  readonly onCrash: "resume" | "rollback"
  /** Consecutive same-fingerprint deterministic failures that open the breaker; 0 when it is off. */
  readonly breakerThreshold: number
  readonly budget: Budget | undefined
}

/** Any pipeline, for collections such as a CLI config's list. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- variance plumbing: any input/output/error/context
export type Any = Pipeline<any, any, any, any>

/** The services a pipeline needs from its caller: everything but the run context the engine provides. */
export type Requirements<P> = P extends Pipeline<infer _I, infer _O, infer _E, infer R> ? Exclude<R, RunContext> : never

/** Define a pipeline. Throws at definition time if the name is unusable (a bug in the pipeline's code). */
export const make = <I, IE, O, OE, E, R, RP = never>(
  options: Options<I, IE, O, OE, E, R, RP>
): Pipeline<I, O, E, R | RP> => {
  const problem = validateName("pipeline name", options.name)
  if (problem !== undefined) throw new Error(`Pipeline.make: ${problem}`)
  for (const [field, limit] of Object.entries(options.budget ?? {})) {
    if (limit !== undefined && !(typeof limit === "number" && limit >= 0 && Number.isFinite(limit))) {
      throw new Error(`Pipeline.make: pipeline "${options.name}" has budget.${field} ${String(limit)}; it must be a finite number >= 0`)
    }
  }
  return {
    name: options.name,
    version: String(options.version),
    codec: {
      encodeInput: Schema.encodeEither(options.input),
      decodeInput: Schema.decodeUnknownEither(options.input),
      encodeOutput: Schema.encodeEither(options.output),
      decodeOutput: Schema.decodeUnknownEither(options.output)
    },
    run: options.run,
    preflight: options.preflight,
    onCrash: options.onCrash ?? "resume",
    breakerThreshold: options.breaker === false ? 0 : Math.max(1, options.breaker?.threshold ?? 3),
    budget: options.budget
  }
}
