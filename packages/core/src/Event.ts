/**
 * The event log's vocabulary: every state change of a run is one of these, Schema-encoded with a type tag
 * and a format version, timestamps in epoch milliseconds. Run status is a projection of them.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Failure from "./Failure.js"
import { Usage } from "./Usage.js"

/** The format version written with every event. Readers refuse versions they do not know. */
export const FORMAT_VERSION = 1

const at = Schema.Number

/** A run was created by its first claim. `input` is the pipeline input, encoded with its Schema. */
export class RunStarted extends Schema.TaggedClass<RunStarted>()("RunStarted", {
  at,
  pipeline: Schema.String,
  version: Schema.String,
  key: Schema.String,
  input: Schema.Unknown,
  inputHash: Schema.String,
  parentRunId: Schema.optional(Schema.String),
  correlationId: Schema.optional(Schema.String)
}) {}

/** An existing run is executed again: after a transient failure, a takeover, or an explicit resume. */
export class RunResumed extends Schema.TaggedClass<RunResumed>()("RunResumed", {
  at,
  reason: Schema.String
}) {}

/** A worker took the run's lease; later appends must carry `token`. */
export class LeaseTaken extends Schema.TaggedClass<LeaseTaken>()("LeaseTaken", {
  at,
  owner: Schema.String,
  token: Schema.Number,
  expiresAt: Schema.Number
}) {}

/** Made durable before the body of an irreversible step runs. */
export class StepStarted extends Schema.TaggedClass<StepStarted>()("StepStarted", {
  at,
  stepId: Schema.String,
  name: Schema.String,
  inputHash: Schema.String,
  attempt: Schema.Number,
  idempotencyKey: Schema.String
}) {}

/** One attempt of a step failed. `retryDelayMs` is set when it will be retried, `giveUp` when not. */
export class StepAttemptFailed extends Schema.TaggedClass<StepAttemptFailed>()("StepAttemptFailed", {
  at,
  stepId: Schema.String,
  name: Schema.String,
  inputHash: Schema.String,
  attempt: Schema.Number,
  startedAt: Schema.Number,
  failure: Failure.Failure,
  retryDelayMs: Schema.optional(Schema.Number),
  giveUp: Schema.optional(Schema.String),
  usage: Schema.optional(Schema.Array(Usage))
}) {}

/** A step completed; `output` is encoded with the step's output Schema and decoded only when served. */
export class StepCompleted extends Schema.TaggedClass<StepCompleted>()("StepCompleted", {
  at,
  stepId: Schema.String,
  name: Schema.String,
  inputHash: Schema.String,
  attempt: Schema.Number,
  startedAt: Schema.Number,
  output: Schema.Unknown,
  usage: Schema.optional(Schema.Array(Usage))
}) {}

/**
 * Something worth a look about one attempt (a waste pattern, a guard that tripped), e.g.
 * `ContextOverCeiling` with the ceiling as `limit` and the input tokens seen as `actual`. Appended in the
 * same append as the attempt's `StepCompleted` or `StepAttemptFailed`.
 */
export class StepFinding extends Schema.TaggedClass<StepFinding>()("StepFinding", {
  at,
  stepId: Schema.String,
  name: Schema.String,
  attempt: Schema.Number,
  kind: Schema.String,
  message: Schema.String,
  limit: Schema.optional(Schema.Number),
  actual: Schema.optional(Schema.Number)
}) {}

/** Completions a resumed execution served from the log instead of running them: what it saved. */
export class StepsServed extends Schema.TaggedClass<StepsServed>()("StepsServed", {
  at,
  stepIds: Schema.Array(Schema.String)
}) {}

export class CompensationStarted extends Schema.TaggedClass<CompensationStarted>()("CompensationStarted", {
  at,
  stepId: Schema.String,
  attempt: Schema.Number
}) {}

export class CompensationCompleted extends Schema.TaggedClass<CompensationCompleted>()("CompensationCompleted", {
  at,
  stepId: Schema.String,
  attempt: Schema.Number
}) {}

export class CompensationFailed extends Schema.TaggedClass<CompensationFailed>()("CompensationFailed", {
  at,
  stepId: Schema.String,
  attempt: Schema.Number,
  failure: Failure.Failure,
  retryDelayMs: Schema.optional(Schema.Number)
}) {}

/** The run finished; `output` is encoded with the pipeline's output Schema. */
export class RunCompleted extends Schema.TaggedClass<RunCompleted>()("RunCompleted", {
  at,
  output: Schema.Unknown
}) {}

/** The run failed; `stepId` names the step whose failure ended it, if a step did. */
export class RunFailed extends Schema.TaggedClass<RunFailed>()("RunFailed", {
  at,
  failure: Failure.Failure,
  fingerprint: Schema.String,
  stepId: Schema.optional(Schema.String)
}) {}

export class RunRolledBack extends Schema.TaggedClass<RunRolledBack>()("RunRolledBack", {
  at
}) {}

/** The run cannot go on by itself: a person must look (e.g. an irreversible step in doubt). */
export class RunNeedsAttention extends Schema.TaggedClass<RunNeedsAttention>()("RunNeedsAttention", {
  at,
  reason: Schema.String,
  pending: Schema.Array(Schema.String)
}) {}

/**
 * A start by key (a redelivery) was answered from the run's stored outcome — its output or its failure —
 * and executed nothing: what the paid completions standing at that moment were not paid for again (the
 * cost ledger counts them saved). Appended by the store's \`deliver\`, never under a lease.
 */
export class RunRedelivered extends Schema.TaggedClass<RunRedelivered>()("RunRedelivered", {
  at
}) {}

export class RunCancelled extends Schema.TaggedClass<RunCancelled>()("RunCancelled", {
  at,
  reason: Schema.String
}) {}

export const Event = Schema.Union(
  RunStarted,
  RunResumed,
  LeaseTaken,
  StepStarted,
  StepAttemptFailed,
  StepCompleted,
  StepFinding,
  StepsServed,
  CompensationStarted,
  CompensationCompleted,
  CompensationFailed,
  RunCompleted,
  RunFailed,
  RunRolledBack,
  RunNeedsAttention,
  RunCancelled,
  RunRedelivered
)

export type Event = typeof Event.Type

/** The class of one event type. */
export type EventClass = (typeof Event.members)[number]

/**
 * Build an event from values the engine made, unvalidated: the instance `new C(props, true)` makes (same
 * prototype, same fields in the same order, `_tag` last), without the Schema class constructor's pass over
 * every field for defaults (the only default is `_tag`), which cost ~5 µs an event on the step path.
 */
export const make = <C extends EventClass>(klass: C, props: ConstructorParameters<C>[0]): InstanceType<C> =>
  Object.assign(Object.create(klass.prototype), props, { _tag: klass._tag })

export type EventType = Event["_tag"]

/** The event types this reader knows, with the newest format version of each. */
export const knownTypes: ReadonlySet<string> = new Set<string>(Event.members.map((m) => m.identifier))

/**
 * What the journal's fold reads of a step's completion besides its output, kept by the store beside the
 * body: a resume or replay folds a completion from these without parsing its body, and parses the body
 * only for the completions it serves. They equal the body's fields of the same names.
 */
export interface StepColumns {
  readonly stepId: string
  readonly name: string
  readonly inputHash: string
  readonly attempt: number
  readonly startedAt: number
}

/** An event as the store keeps it: envelope columns plus the encoded body as JSON text. */
export interface StoredEvent {
  readonly runId: string
  readonly seq: number
  readonly type: string
  readonly v: number
  readonly at: number
  readonly data: string
  /** The step columns of a `StepCompleted` appended with them (see `NewEvent.step`); absent otherwise. */
  readonly step?: StepColumns | undefined
}

/**
 * A step's completion as a fold reads it: its step columns without its body. A resume needs the bodies of
 * the completions it serves only (`EventStore.readBodies`); replaying or inspecting a run needs none.
 */
export interface StoredCompletion {
  readonly runId: string
  readonly seq: number
  readonly type: string
  readonly v: number
  readonly at: number
  readonly step: StepColumns
}

/** A row of a run's log as `EventStore.readFold` hands it: with its body, or a completion without it. */
export type FoldRow = StoredEvent | StoredCompletion

/** An event encoded for appending; the store assigns `runId` and `seq`. */
export interface NewEvent {
  readonly type: string
  readonly v: number
  readonly at: number
  readonly data: string
  /**
   * Set by `encode` for a `StepCompleted` without usage (nearly all of a log): the store keeps it and hands
   * it back with the event. A completion with usage is folded from its body (budgets read its usage).
   */
  readonly step?: StepColumns | undefined
}

/** The log holds an event this code does not know: written by a newer ledgerflow, or damaged. */
export class UnknownEvent extends Schema.TaggedError<UnknownEvent>()("UnknownEvent", {
  runId: Schema.String,
  seq: Schema.Number,
  type: Schema.String,
  v: Schema.Number,
  message: Schema.String
}) {}

/**
 * One encoder and decoder per event type, picked by the stored type: decoding against the whole union
 * would try its members one by one, and replay decodes every event of a log.
 */
interface Codec {
  readonly encode: (event: Event) => unknown
  readonly decode: (json: unknown) => Either.Either<Event, ParseResult.ParseError>
  /**
   * The fields whose encoding is not the identity (a \`Failure\`, \`Usage\` with its defaults). An event with
   * none of them set encodes to its own fields, so it is written as \`JSON.stringify(event)\` without the
   * Schema interpreter: most events the engine writes (a step's completion, a lease) are such.
   */
  readonly transformed: ReadonlyArray<string>
}

/** A field is encoded as it is when its Schema's encoded side is its type side (no transformation). */
const isIdentity = (field: Schema.Struct.Field): boolean => {
  const struct = Schema.Struct({ field })
  return SchemaAST.encodedAST(struct.ast) === struct.ast
}

// Each member is a different class; the union's members are only nameable together as "any schema". The
// codec is looked up by the event's own `_tag`, so each encoder only ever sees its own class.
const codecOf = (schema: Schema.Schema.AnyNoContext & { readonly fields: Schema.Struct.Fields }): Codec => ({
  encode: Schema.encodeSync(schema),
  decode: Schema.decodeUnknownEither(schema),
  transformed: Object.entries(schema.fields).flatMap(([name, field]) => isIdentity(field) ? [] : [name])
})

const codecs: ReadonlyMap<string, Codec> = new Map(Event.members.map((m) => [m.identifier, codecOf(m)]))

/** Encode an event for the store. Events are built by the engine, so a failure here is a bug. */
export const encode = (event: Event): NewEvent => {
  const codec = codecs.get(event._tag)!
  const plain = codec.transformed.every((field) => (event as unknown as Record<string, unknown>)[field] === undefined)
  const data = JSON.stringify(plain ? event : codec.encode(event))
  if (event._tag !== "StepCompleted" || event.usage !== undefined || !keepsInColumns(event)) {
    return { type: event._tag, v: FORMAT_VERSION, at: event.at, data }
  }
  const { attempt, inputHash, name, startedAt, stepId } = event
  return { type: event._tag, v: FORMAT_VERSION, at: event.at, data, step: { stepId, name, inputHash, attempt, startedAt } }
}

/**
 * What JSON keeps (escaped) and a store's text column does not: a lone UTF-16 surrogate (UTF-8 has none),
 * or NUL (a Postgres text value cannot hold one).
 */
const notColumnText = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/

/** An integer that JSON writes and reads back as itself (not -0, NaN, ±Infinity or beyond 2^53). */
const isJsonInteger = (n: number): boolean => Number.isSafeInteger(n) && !Object.is(n, -0)

/**
 * A completion whose step columns, as any store keeps them, equal what its body decodes to: the engine's
 * are (millisecond clocks, attempt counts), short of a step name with a lone surrogate or a NUL. Any other is
 * folded from its body.
 */
const keepsInColumns = (event: StepCompleted): boolean =>
  isJsonInteger(event.at) && isJsonInteger(event.attempt) && isJsonInteger(event.startedAt) &&
  !notColumnText.test(event.stepId) && !notColumnText.test(event.name) && !notColumnText.test(event.inputHash)

/**
 * The log's commonest event, decoded without the Schema interpreter when its shape is plainly right (a
 * replay decodes every event; this one is most of them). Anything else — usage to decode, a wrong field —
 * takes the Schema path, which also words the error. The result equals the Schema decoder's.
 */
const fastStepCompleted = (json: unknown): StepCompleted | undefined => {
  if (!Predicate.isRecord(json) || json["usage"] !== undefined || !("output" in json)) return undefined
  const { at, attempt, inputHash, name, output, startedAt, stepId } = json
  return typeof at === "number" && typeof stepId === "string" && typeof name === "string" &&
      typeof inputHash === "string" && typeof attempt === "number" && typeof startedAt === "number"
    ? new StepCompleted({ at, stepId, name, inputHash, attempt, startedAt, output }, true)
    : undefined
}

/** Decode a stored event; an unknown type or a newer version is an `UnknownEvent` naming it. */
export const decodeEither = (stored: StoredEvent): Either.Either<Event, UnknownEvent> => {
  const unknown = (message: string) =>
    Either.left(new UnknownEvent({ runId: stored.runId, seq: stored.seq, type: stored.type, v: stored.v, message }))
  const codec = codecs.get(stored.type)
  if (codec === undefined) {
    return unknown(
      `event #${stored.seq} of run ${stored.runId} has type "${stored.type}", which this version of ledgerflow does not know; upgrade ledgerflow to read this log`
    )
  }
  if (stored.v > FORMAT_VERSION || stored.v < 1) {
    return unknown(
      `event #${stored.seq} (${stored.type}) of run ${stored.runId} has format version ${stored.v}; this ledgerflow reads versions 1..${FORMAT_VERSION}; upgrade ledgerflow to read this log`
    )
  }
  let json: unknown
  try {
    json = JSON.parse(stored.data)
  } catch {
    return unknown(`event #${stored.seq} (${stored.type}) of run ${stored.runId} is not valid JSON`)
  }
  const fast = stored.type === "StepCompleted" ? fastStepCompleted(json) : undefined
  if (fast !== undefined) return Either.right(fast)
  const decoded = codec.decode(json)
  return Either.isRight(decoded) ? Either.right(decoded.right) : unknown(
    `event #${stored.seq} (${stored.type}) of run ${stored.runId} does not match its schema: ${
      ParseResult.TreeFormatter.formatErrorSync(decoded.left)
    }`
  )
}

/** Decode a stored event; an unknown type or a newer version is an `UnknownEvent` naming it. */
export const decode = (stored: StoredEvent): Effect.Effect<Event, UnknownEvent> => decodeEither(stored)

/** Decode a run's stored events in order (one plain loop: replay decodes every event of a log). */
export const decodeAll = (stored: ReadonlyArray<StoredEvent>): Effect.Effect<Array<Event>, UnknownEvent> =>
  Effect.suspend(() => {
    const events: Array<Event> = []
    for (const s of stored) {
      const decoded = decodeEither(s)
      if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
      events.push(decoded.right)
    }
    return Effect.succeed(events)
  })

/** A decoded event with its place in the run's log (`seq`, from 1, gapless). */
export type Sequenced = Event & { readonly seq: number }

/** Decode a run's stored events in order, each with its `seq`. */
export const decodeAllWithSeq = (
  stored: ReadonlyArray<StoredEvent>
): Effect.Effect<Array<Sequenced>, UnknownEvent> =>
  Effect.map(decodeAll(stored), (events) => events.map((event, i) => Object.assign(event, { seq: stored[i]?.seq ?? i + 1 })))
