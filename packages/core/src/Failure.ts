/**
 * The failure model: every failure a step can have is either `Transient` (may heal: retry with backoff)
 * or `Deterministic` (cannot heal: fail at once). Both are Schema-tagged errors, so they cross the event
 * log and come back equal.
 */
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as internalClassify from "./internal/classify.js"
import { get, str } from "./internal/classify/read.js"
import { innermost } from "./internal/innermost.js"
import * as JournalSafe from "./internal/journalSafe.js"

/**
 * A JSON-safe summary of the raw error behind a failure: enough to act on and to fingerprint, never the
 * raw object (which may hold sockets, requests or secrets).
 */
export class ErrorInfo extends Schema.Class<ErrorInfo>("ErrorInfo")({
  name: Schema.String,
  message: Schema.String,
  code: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Number),
  type: Schema.optional(Schema.String),
  /** The error's own `_tag` (a `Data.TaggedError`, a Schema error class): tell `NotFound` from `Forbidden`. */
  tag: Schema.optional(Schema.String),
  /** The tagged error's own fields that JSON carries as they are (others are left out). */
  fields: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
}) {}

const failureFields = {
  /** A human reason: what failed, and the classifier rule that decided. */
  reason: Schema.String,
  /** The classifier rule that fired (e.g. `http-status`, `sqlite-code`), when classified. */
  rule: Schema.optional(Schema.String),
  /** The raw error, summarised. */
  cause: Schema.optional(ErrorInfo),
  /** The run that failed: set on every failure `Engine.run` (or `resume`) returns. */
  runId: Schema.optional(Schema.String),
  /** The step that failed, when a step did. */
  stepId: Schema.optional(Schema.String)
}

/** A failure that may heal: retried with backoff, never sooner than `retryAfter`. */
export class Transient extends Schema.TaggedError<Transient>()("Transient", {
  ...failureFields,
  /** The server's hint: do not retry before this much time has passed. */
  retryAfter: Schema.optional(Schema.DurationFromMillis)
}) {}

/** A failure that cannot heal by waiting: never retried; the run fails at once. */
export class Deterministic extends Schema.TaggedError<Deterministic>()("Deterministic", failureFields) {}

/** Either classification. */
export type Failure = Transient | Deterministic

/** The Schema of either classification, as journaled. */
export const Failure: Schema.Union<[typeof Transient, typeof Deterministic]> = Schema.Union(Transient, Deterministic)

export const isTransient = (u: unknown): u is Transient => u instanceof Transient

export const isDeterministic = (u: unknown): u is Deterministic => u instanceof Deterministic

export const isFailure = (u: unknown): u is Failure => isTransient(u) || isDeterministic(u)

/**
 * The key of an error's own verdict: an error class with a `[Failure.toFailure]()` method says itself how
 * it is journaled, and `classify` asks it before any rule. The guards' errors (`LoopLimitExceeded`,
 * `BudgetExceeded`, `ContextOverCeiling`, `SchemaDrift`) are such classes: a caller catches them by tag
 * (`Effect.catchTag("LoopLimitExceeded", …)`) where they are raised, and the log records the same
 * `Failure` for them every time.
 */
export const toFailure: unique symbol = Symbol.for("@ledgerflow/core/Failure/toFailure")

/** An error that carries the `Failure` it is journaled as (see `toFailure`). */
export interface HasFailure {
  readonly [toFailure]: () => Failure
}

export const hasFailure = (u: unknown): u is HasFailure =>
  Predicate.hasProperty(u, toFailure) && Predicate.isFunction(u[toFailure])

/** `"transient"` or `"deterministic"`: the classification as it is written in events and reports. */
export type Classification = "transient" | "deterministic"

export const classification = (failure: Failure): Classification =>
  failure._tag === "Transient" ? "transient" : "deterministic"

/**
 * Summarise any thrown value as an `ErrorInfo`: the innermost error that says what went wrong — the
 * driver's error inside `@effect/sql`'s `SqlError`, undici's inside `fetch failed` — not the wrapper's
 * generic text, so that two different errors never share a fingerprint.
 */
export const describe = (raw: unknown): ErrorInfo => {
  if (raw instanceof ErrorInfo) return raw
  const u = innermost(raw)
  if (Predicate.isObject(u)) {
    const name = str(get(u, "_tag")) ?? (u instanceof Error ? u.name : undefined) ?? u.constructor?.name ?? "Error"
    const message = str(get(u, "message")) ?? safeString(u)
    const code = str(get(u, "code"))
    const status = get(u, "status")
    // The SDK's error body: `{ type, error: { type } }` or `{ type }`.
    const body = get(u, "error")
    const type = str(get(u, "type")) ?? str(get(body, "type")) ?? str(get(get(body, "error"), "type"))
    const tag = get(u, "_tag")
    const fields = typeof tag === "string" ? ownFields(u) : undefined
    return new ErrorInfo({
      name,
      message,
      ...(code !== undefined ? { code } : {}),
      ...(typeof status === "number" ? { status } : {}),
      ...(type !== undefined ? { type } : {}),
      ...(typeof tag === "string" ? { tag } : {}),
      ...(fields !== undefined ? { fields } : {})
    })
  }
  return new ErrorInfo({ name: typeof u, message: safeString(u) })
}

/** Fields that say nothing of the error itself, or that the summary keeps elsewhere. */
const notFields = new Set(["_tag", "message", "stack", "cause", "name"])

/** A tagged error's own fields that JSON carries exactly (so they survive the log), if any. */
const ownFields = (u: object): Record<string, unknown> | undefined => {
  let kept: Record<string, unknown> | undefined
  for (const key of Object.keys(u)) {
    if (notFields.has(key)) continue
    const value: unknown = Reflect.get(u, key)
    if (!JournalSafe.isPlainJson(value)) continue
    kept ??= {}
    kept[key] = value
  }
  return kept
}

const safeString = (u: unknown): string => {
  try {
    return typeof u === "string" ? u : JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** Make a `Transient` from a reason, with an optional raw cause and `retryAfter` hint. */
export const transient = (
  reason: string,
  options?: { readonly cause?: unknown; readonly retryAfter?: Duration.DurationInput; readonly rule?: string }
): Transient =>
  new Transient({
    reason,
    ...(options?.rule !== undefined ? { rule: options.rule } : {}),
    ...(options?.cause !== undefined ? { cause: describe(options.cause) } : {}),
    ...(options?.retryAfter !== undefined ? { retryAfter: Duration.decode(options.retryAfter) } : {})
  })

/**
 * The failure with the run (and step) it ended named on it: what `Engine.run` returns, so a caller can
 * resume or inspect the run without looking it up.
 */
export function inRun(failure: Transient, runId: string, stepId?: string): Transient
export function inRun(failure: Deterministic, runId: string, stepId?: string): Deterministic
export function inRun(failure: Failure, runId: string, stepId?: string): Failure
export function inRun(failure: Failure, runId: string, stepId?: string): Failure {
  if (failure.runId === runId && failure.stepId === (stepId ?? failure.stepId)) return failure
  const fields = {
    reason: failure.reason,
    ...(failure.rule !== undefined ? { rule: failure.rule } : {}),
    ...(failure.cause !== undefined ? { cause: failure.cause } : {}),
    runId,
    ...(stepId !== undefined ? { stepId } : failure.stepId !== undefined ? { stepId: failure.stepId } : {})
  }
  return failure._tag === "Transient"
    ? new Transient({ ...fields, ...(failure.retryAfter !== undefined ? { retryAfter: failure.retryAfter } : {}) })
    : new Deterministic(fields)
}

/**
 * The `_tag` of the step's own error behind a failure (`"NotFound"`), when it was a tagged error: branch on
 * it instead of parsing the reason. Its JSON-safe fields are in `failure.cause.fields`.
 */
export const errorTag = (failure: Failure): string | undefined => failure.cause?.tag

/** Make a `Deterministic` from a reason, with an optional raw cause. */
export const deterministic = (
  reason: string,
  options?: { readonly cause?: unknown; readonly rule?: string }
): Deterministic =>
  new Deterministic({
    reason,
    ...(options?.rule !== undefined ? { rule: options.rule } : {}),
    ...(options?.cause !== undefined ? { cause: describe(options.cause) } : {})
  })

/**
 * A fingerprint of a failure for grouping ("the same failure ×21"): classification, the rule, the error's
 * name and code, and its message with numbers, quoted values and ids normalised away.
 */
export const fingerprint = (failure: Failure): string => {
  const msg = normaliseMessage(failure.cause?.message ?? failure.reason)
  return [failure._tag, failure.rule ?? "", failure.cause?.name ?? "", failure.cause?.code ?? "", msg].join("|")
}

/** Replace the parts of a message that vary between occurrences of one failure. */
export const normaliseMessage = (message: string): string =>
  message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
    // A timestamp (ISO 8601, date and time) before its numbers; a quoted value ('…', SQL's string literal;
    // double quotes are left: SQL quotes identifiers with them, and a missing column "x" is not column "y").
    .replace(/\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?/g, "<time>")
    .replace(/'(?:[^']|'')*'/g, "'<v>'")
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b/gi, "<hex>")
    .replace(/\b(req|msg|run)_[A-Za-z0-9]+/g, "$1_<id>")
    .replace(/\d+(\.\d+)?/g, "<n>")
    .replace(/\s+/g, " ")
    .trim()

// ---------------------------------------------------------------------------------------------------------
// The classifier (rules in `internal/classify.ts`, which returns plain data so it need not import this module)
// ---------------------------------------------------------------------------------------------------------


const isTaggedFailure = (u: unknown): boolean =>
  Predicate.isTagged(u, "Transient") || Predicate.isTagged(u, "Deterministic")

/**
 * Classify any thrown value as `Transient` or `Deterministic`. The reason names the rule that fired
 * (explicit hints, cancellation, Anthropic SDK errors, HTTP status, SQL codes, network codes, Schema
 * errors; anything unknown is `Deterministic`); `retryAfter` carries the server's `retry-after-ms` /
 * `retry-after` hint. A `Transient` or `Deterministic` is returned as is; an error with its own verdict
 * (`toFailure`) gets it; a look-alike (same `_tag`, e.g. from another copy of this module) is rebuilt as
 * one, keeping its reason, rule, cause and `retryAfter`.
 */
export const classify = (u: unknown): Failure => {
  if (isFailure(u)) return u
  if (hasFailure(u)) return u[toFailure]()
  const verdict = internalClassify.classify(u)
  const cause = isTaggedFailure(u) ? keptCause(u) : describe(u)
  const fields = {
    reason: verdict.reason,
    rule: verdict.rule,
    ...(cause !== undefined ? { cause } : {})
  }
  return verdict.kind === "transient"
    ? new Transient({
      ...fields,
      ...(verdict.retryAfterMs !== undefined ? { retryAfter: Duration.millis(verdict.retryAfterMs) } : {})
    })
    : new Deterministic(fields)
}

/** A look-alike's own `cause`, when it is an `ErrorInfo` or encodes one. */
const keptCause = (u: unknown): ErrorInfo | undefined => {
  const cause = Predicate.hasProperty(u, "cause") ? u.cause : undefined
  if (cause instanceof ErrorInfo) return cause
  const decoded = Schema.decodeUnknownEither(ErrorInfo)(cause)
  return decoded._tag === "Right" ? decoded.right : undefined
}
