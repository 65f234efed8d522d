/**
 * Spans only where someone receives them. A program that provided no tracer runs under Effect's default
 * one, which keeps its spans in memory and exports nowhere; making them cost about a quarter of a step's CPU in
 * a profile of the bench's sequential workload (a span object, its attributes, a captured stack trace per step
 * and attempt). So a run makes
 * spans only when a tracer was provided (e.g. `@effect/opentelemetry`'s layer), and never captures stacks.
 */
import * as Effect from "effect/Effect"
import * as Context from "effect/Context"
import * as Tracer from "effect/Tracer"

// The tracer of a program that provided none: read once from Effect's default services (a plain read, no
// effect runs; `Effect.tracer` has no requirements).
const defaultTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/**
 * `f` given whether spans made now reach a tracer someone provided, and the span it runs under (when
 * traced): read off the fiber in one effect, as a run does once when it starts.
 */
export const current = <A, E, R>(
  f: (traced: boolean, parent: Tracer.AnySpan | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const traced = fiber.currentTracer !== defaultTracer
    return f(traced, traced ? Context.getOrElse(fiber.currentContext, Tracer.ParentSpan, () => undefined) : undefined)
  })

/** Whether spans made now reach a tracer someone provided. */
export const enabled: Effect.Effect<boolean> = current((traced) => Effect.succeed(traced))

export interface SpanOptions {
  readonly attributes?: Readonly<Record<string, unknown>>
  readonly kind?: Tracer.SpanKind
  readonly parent?: Tracer.AnySpan | undefined
}

/** `effect` in a span, when traced (`on`): without a stack trace, under `parent` when given. */
export const span = (on: boolean, name: string, options: SpanOptions = {}) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  on
    ? Effect.withSpan(effect, name, {
      captureStackTrace: false,
      ...(options.attributes !== undefined ? { attributes: options.attributes } : {}),
      ...(options.kind !== undefined ? { kind: options.kind } : {}),
      ...(options.parent !== undefined ? { parent: options.parent } : {})
    })
    : effect

/** `effect` in a span if a tracer was provided (checked when it runs). */
export const traced = (name: string, options: SpanOptions = {}) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  current((on) => span(on, name, options)(effect))

/** Annotate the current span, when traced. */
export const annotate = (on: boolean, attributes: Record<string, unknown>): Effect.Effect<void> =>
  on ? Effect.annotateCurrentSpan(attributes) : Effect.void

/** A step call's span (when traced): its identity, and whether (and from where) it was served. */
export const stepSpan = (
  runId: string,
  stepId: string,
  name: string,
  match: { readonly _tag: string; readonly reordered?: boolean; readonly entry?: { readonly stepId: string } }
) =>
  span(true, "ledgerflow.step", {
    attributes: {
      "ledgerflow.run_id": runId,
      "ledgerflow.step_id": stepId,
      "ledgerflow.step.name": name,
      "ledgerflow.served": match._tag === "Served",
      ...(match._tag === "Served" && match.reordered === true && match.entry !== undefined
        ? { "ledgerflow.served_from": match.entry.stepId }
        : {})
    }
  })
