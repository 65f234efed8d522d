/**
 * Claude steps: the real `@anthropic-ai/sdk` client as a service (with its own retries off: ledgerflow's
 * retry policy is the only one), and `messageStep`, a durable step that calls the Messages API, journals
 * the usage of every attempt, decodes structured output with a Schema and treats a reply of the wrong
 * shape as `SchemaDrift` — retried up to its own cap, its tokens counted as waste.
 */
import AnthropicSdk from "@anthropic-ai/sdk"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Failure from "./Failure.js"
import * as internal from "./internal/anthropic.js"
import * as Tracing from "./internal/tracing.js"
import * as Pricing from "./Pricing.js"
import type * as RetryPolicy from "./RetryPolicy.js"
import * as Step from "./Step.js"
import { Usage } from "./Usage.js"

// ---------------------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------------------

export interface AnthropicService {
  /** The real SDK client, built with `maxRetries: 0`. Use it for calls that are not steps. */
  readonly client: AnthropicSdk
  /** Where it sends requests: the API, a proxy, or a local stand-in. */
  readonly baseURL: string
}

/** The Anthropic client that `messageStep`s call. Provide it with `Anthropic.layer(...)`. */
export class AnthropicClient extends Context.Tag("@ledgerflow/core/AnthropicClient")<
  AnthropicClient,
  AnthropicService
>() {}

/** The client cannot be built: no API key and nowhere else to send requests. `message` says what to do. */
export class AnthropicConfigError extends Schema.TaggedError<AnthropicConfigError>()("AnthropicConfigError", {
  message: Schema.String
}) {}

export interface LayerOptions {
  /** Default: the `ANTHROPIC_API_KEY` config value (environment variable). */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  /**
   * Default: the `ANTHROPIC_BASE_URL` config value, else the API. Set it to a local stand-in's URL to run
   * without a key (a placeholder key is sent).
   */
  readonly baseURL?: string | undefined
  /** How long one request may take before it fails as a (transient) timeout. Default 10 minutes. */
  readonly timeout?: Duration.DurationInput | undefined
}

const defaultBaseURL = "https://api.anthropic.com"

/**
 * Build the client. Without an API key and without a `baseURL` it fails with a message saying how to set
 * one: a pipeline must not discover that it cannot pay only when it reaches its first Claude step.
 */
export const make = (options: LayerOptions = {}): Effect.Effect<AnthropicService, AnthropicConfigError> =>
  Effect.gen(function*() {
    const fromConfig = <A>(config: Config.Config<A>) =>
      Config.option(config).pipe(
        Effect.mapError((error) =>
          new AnthropicConfigError({ message: `The Anthropic client's configuration is invalid: ${String(error)}` })
        )
      )
    const keyOption = options.apiKey !== undefined
      ? Option.some(Redacted.isRedacted(options.apiKey) ? options.apiKey : Redacted.make(options.apiKey))
      : yield* fromConfig(Config.redacted("ANTHROPIC_API_KEY"))
    const apiKey = Option.filter(keyOption, (key) => Redacted.value(key).trim() !== "")
    const baseURL = options.baseURL ?? Option.getOrUndefined(yield* fromConfig(Config.string("ANTHROPIC_BASE_URL")))
    if (Option.isNone(apiKey) && baseURL === undefined) {
      return yield* Effect.fail(
        new AnthropicConfigError({
          message:
            "No Anthropic API key: set the ANTHROPIC_API_KEY environment variable (or pass apiKey to Anthropic.layer), " +
            "or run against a local stand-in: start one with `ledgerflow-standin --port 4100` and set " +
            "ANTHROPIC_BASE_URL=http://127.0.0.1:4100 (or pass baseURL to Anthropic.layer; in tests, " +
            "AnthropicStandIn.layer() from @ledgerflow/core/testing gives its url)"
        })
      )
    }
    const timeout = Duration.toMillis(Duration.decode(options.timeout ?? Duration.minutes(10)))
    const resolvedURL = baseURL ?? defaultBaseURL
    const client = new AnthropicSdk({
      // A stand-in (or a proxy that holds the key) needs no real key; the SDK insists on one.
      apiKey: Option.match(apiKey, { onNone: () => "ledgerflow-no-key", onSome: Redacted.value }),
      baseURL: resolvedURL,
      // Retries multiply: ledgerflow's retry policy is the only one.
      maxRetries: 0,
      timeout
    })
    return { client, baseURL: resolvedURL }
  })

/** The `AnthropicClient` service (see `make`). */
export const layer = (options: LayerOptions = {}): Layer.Layer<AnthropicClient, AnthropicConfigError> =>
  Layer.effect(AnthropicClient, make(options))

// ---------------------------------------------------------------------------------------------------------
// The step
// ---------------------------------------------------------------------------------------------------------

/**
 * A reply whose structure does not match the step's output Schema. `fingerprint` is the structure of
 * what came back (keys and types, never values), so the same drift is recognised across attempts and runs.
 */
export class SchemaDrift extends Schema.TaggedError<SchemaDrift>()("SchemaDrift", {
  stepName: Schema.String,
  fingerprint: Schema.String,
  message: Schema.String
}) {
  /** Journaled (by `Failure.classify`) as `driftFailure(this)`. */
  [Failure.toFailure](): Failure.Transient {
    return driftFailure(this)
  }
}

/** The `Failure` a drift is journaled as: `Transient`, rule `schema-drift`, the fingerprint as its cause's code. */
export const driftFailure = (drift: SchemaDrift): Failure.Transient =>
  new Failure.Transient({
    reason: `SchemaDrift: the reply of step ${drift.stepName} does not match its output Schema (got ${drift.fingerprint}) (rule: schema-drift)`,
    rule: "schema-drift",
    cause: new Failure.ErrorInfo({ name: "SchemaDrift", message: drift.message, code: drift.fingerprint })
  })

/**
 * A Claude call sent more input tokens (uncached + cache write + cache read) than its step's
 * `contextCeiling`, and the step has `failOverCeiling`. Raised by the step's body after the call (it is
 * paid, and its usage reported); journaled (by `Failure.classify`) as a `Deterministic` with rule
 * `context-ceiling`, its cause named `ContextOverCeiling`.
 */
export class ContextOverCeiling extends Schema.TaggedError<ContextOverCeiling>()("ContextOverCeiling", {
  /** The step whose call passed its ceiling. */
  stepId: Schema.String,
  /** The ceiling, in input tokens. */
  limit: Schema.Number,
  /** The input tokens the call sent. */
  actual: Schema.Number
}) {
  override get message(): string {
    const over = this.actual - this.limit
    return `step ${this.stepId} sent ${this.actual} input tokens, ${over} (${
      Math.round((over / this.limit) * 100)
    }%) over its context ceiling of ${this.limit}`
  }

  /** What to do. */
  get hint(): string {
    return "trim the context (or raise contextCeiling) and resume"
  }

  [Failure.toFailure](): Failure.Deterministic {
    return Failure.deterministic(`ContextOverCeiling: ${this.message}; ${this.hint} (rule: context-ceiling)`, {
      rule: "context-ceiling",
      cause: new Failure.ErrorInfo({ name: "ContextOverCeiling", message: this.message })
    })
  }
}

/** The drift fingerprint a failure carries, when it is a drift. */
export const driftFingerprint = (failure: Failure.Failure): string | undefined =>
  failure.rule === "schema-drift" ? failure.cause?.code : undefined

/** A prompt: the user's text, or whole messages (a conversation, tool results, images). */
export type Prompt = string | ReadonlyArray<AnthropicSdk.MessageParam>

export interface MessageStepOptions<I, O> {
  /** The step's name (see `Step.make`). */
  readonly name: string
  /** The model id, e.g. `claude-sonnet-4-6`. */
  readonly model: string
  readonly maxTokens: number
  readonly system?: string | ((input: I) => string) | undefined
  readonly prompt: (input: I) => Prompt
  /**
   * The input Schema: the step is journaled under the hash of its encoded input. Without one, the hash
   * is of the rendered request (model, system, messages), so a different prompt is never served an old reply.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any encoding: only the step's journal sees it
  readonly input?: Schema.Schema<I, any, never> | undefined
  /**
   * Structured output. The request offers one tool whose input schema is this Schema's JSON Schema; the
   * reply's tool call (or, failing that, its text parsed as JSON) is decoded with it. A mismatch is
   * `SchemaDrift`. The Schema must describe a JSON object; anything else throws here, at definition time.
   * Without it, the step's output is the reply's text.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any encoding: only the step's journal sees it
  readonly output?: Schema.Schema<O, any, never> | undefined
  /** The output tool's name. Default: the step name, with characters tools do not allow replaced by `_`. */
  readonly toolName?: string | undefined
  /**
   * `forced` (default) sends `tool_choice: { type: "tool" }`; `auto` lets the model choose (models that
   * reject forced tool choice, such as the 5.5 family, need it): a reply without the call is decoded from
   * its text, and drifts if that is not the expected JSON.
   */
  readonly toolChoice?: "forced" | "auto" | undefined
  /**
   * The context this step is expected to need, in input tokens (uncached + cache write + cache read). A
   * reply whose input passed it is recorded as a `ContextOverCeiling` finding, with how far over.
   */
  readonly contextCeiling?: number | undefined
  /**
   * With `contextCeiling`: also fail the step when it is passed, with `ContextOverCeiling` (journaled as a
   * `Deterministic`, rule `context-ceiling`).
   */
  readonly failOverCeiling?: boolean | undefined
  /** How many times a drifted reply is retried, apart from `retry`. Default 1. */
  readonly driftCap?: number | undefined
  /** Stream the reply (long outputs); usage is the final `message_delta`'s. Default false. */
  readonly stream?: boolean | undefined
  /** Retries of transient failures (429, 529, timeouts, …). Default `RetryPolicy.defaultPolicy`. */
  readonly retry?: RetryPolicy.RetryPolicy | undefined
  readonly temperature?: number | undefined
}

/**
 * A Claude call as a step. Its body fails with a `Failure` (the call's error, classified), a `SchemaDrift`
 * or a `ContextOverCeiling`: a step of your own that calls `run` can catch the last two by tag.
 */
export type MessageStep<I, O> = Step.Step<I, O, Failure.Failure | SchemaDrift | ContextOverCeiling, AnthropicClient>

/**
 * A step that calls the Messages API once per attempt. Every attempt's usage (input, output, cache write,
 * cache read) is reported, whatever the outcome; errors are classified with `Failure.classify` (429, 529,
 * `overloaded_error` mid-stream → Transient; 400, 401, spend limits → Deterministic); the paid output is
 * kept when the run rolls back (`keepOnRollback`). Its `estimate` (prompt characters / 4, up to
 * `maxTokens` out) lets a run budget stop it before it is called.
 *
 * Throws at definition time when `output` cannot be a tool's input schema, or an option is out of range.
 */
export const messageStep = <I = void, O = string>(options: MessageStepOptions<I, O>): MessageStep<I, O> => {
  const where = `Anthropic.messageStep "${options.name}"`
  if (!(Number.isInteger(options.maxTokens) && options.maxTokens >= 1)) {
    throw new Error(`${where}: maxTokens must be an integer >= 1, got ${options.maxTokens}`)
  }
  if (options.contextCeiling !== undefined && !(options.contextCeiling > 0)) {
    throw new Error(`${where}: contextCeiling must be a positive number of tokens, got ${options.contextCeiling}`)
  }
  if (options.failOverCeiling === true && options.contextCeiling === undefined) {
    throw new Error(`${where}: failOverCeiling needs a contextCeiling`)
  }
  const tool = options.toolName ?? internal.toolName(options.name)
  const output = options.output
  let tools: ReadonlyArray<AnthropicSdk.Tool> | undefined
  if (output !== undefined) {
    // The JSON Schema of a transformation is of its encoded side: what the model writes, and we decode.
    const built = internal.outputTool(tool, output, descriptionOf(output))
    if (built._tag === "Invalid") {
      throw new Error(`${where}: the output Schema cannot be the input schema of a tool, so it cannot be requested as structured output: ${built.reason}`)
    }
    tools = [built.tool]
  }

  const request = (input: I) => {
    const prompt = options.prompt(input)
    const system = typeof options.system === "function" ? options.system(input) : options.system
    const messages: Array<AnthropicSdk.MessageParam> = typeof prompt === "string"
      ? [{ role: "user", content: prompt }]
      : [...prompt]
    const params: AnthropicSdk.MessageCreateParamsNonStreaming = {
      model: options.model,
      max_tokens: options.maxTokens,
      messages,
      ...(system !== undefined ? { system } : {}),
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(tools !== undefined
        ? {
          tools: [...tools],
          tool_choice: options.toolChoice === "auto" ? { type: "auto" } : { type: "tool", name: tool }
        }
        : {})
    }
    return { params, system, messages }
  }

  const decodeOutput = output === undefined ? undefined : Schema.decodeUnknownEither(output)

  const run = (input: I, context: Step.StepContext) =>
    Effect.gen(function*() {
      const { client } = yield* AnthropicClient
      const { params } = request(input)
      // Read once: untraced, the call builds no span attributes and prices nothing (no span would receive them).
      const traced = yield* Tracing.enabled
      const message = yield* call(client, params, options.stream === true).pipe(
        Effect.tap((reply) => Tracing.annotate(traced, replyAttributes(reply))),
        Tracing.span(traced, `chat ${options.model}`, {
          kind: "client",
          attributes: {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": options.model,
            "gen_ai.request.max_tokens": options.maxTokens,
            "ledgerflow.step_id": context.stepId,
            "ledgerflow.attempt": context.attempt
          }
        })
      )
      const usage = new Usage({
        model: message.model || options.model,
        inputTokens: message.usage.input_tokens,
        outputTokens: message.usage.output_tokens,
        cacheWriteTokens: message.usage.cache_creation_input_tokens ?? 0,
        cacheReadTokens: message.usage.cache_read_input_tokens ?? 0
      })
      // Reported before anything below can fail: the call is paid, whatever becomes of its reply.
      yield* context.reportUsage(usage)
      if (traced) {
        const priced = Pricing.cost(yield* Pricing.current, usage)
        if (priced._tag === "Priced") yield* Effect.annotateCurrentSpan("ledgerflow.cost.usd", priced.usd)
      }
      const ceiling = options.contextCeiling
      const contextTokens = usage.inputTokens + usage.cacheWriteTokens + usage.cacheReadTokens
      if (ceiling !== undefined && contextTokens > ceiling) {
        const over = new ContextOverCeiling({ stepId: context.stepId, limit: ceiling, actual: contextTokens })
        yield* context.reportFinding({ kind: "ContextOverCeiling", message: over.message, limit: ceiling, actual: contextTokens })
        if (options.failOverCeiling === true) return yield* over
      }
      // Without an output Schema, O is string (its default): the reply's text.
      if (decodeOutput === undefined) return internal.textOf(message) as O
      const structured = internal.structuredOf(message, tool)
      if (structured._tag === "NotJson") {
        return yield* Effect.fail(
          new SchemaDrift({
            stepName: options.name,
            fingerprint: structured.shape,
            message: `expected a ${tool} tool call or JSON text; got ${structured.shape}`
          })
        )
      }
      const decoded = decodeOutput(structured.value)
      if (Either.isLeft(decoded)) {
        return yield* Effect.fail(
          new SchemaDrift({
            stepName: options.name,
            fingerprint: internal.shapeOf(structured.value),
            message: `the ${structured.from === "tool_use" ? "tool call's input" : "JSON text"} does not match the output Schema: ${
              ParseResult.TreeFormatter.formatErrorSync(decoded.left)
            }`
          })
        )
      }
      return decoded.right
    })

  const estimate = (input: I): Step.Estimate => {
    const { messages, system } = request(input)
    return {
      model: options.model,
      inputTokens: internal.estimateTokens({ system, messages, tools }),
      outputTokens: options.maxTokens
    }
  }

  const common = {
    name: options.name,
    // Without an output Schema the output is the reply's text.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- O defaults to string exactly when output is absent
    output: (output ?? Schema.String) as Schema.Schema<O, any, never>,
    run,
    estimate,
    keepOnRollback: true,
    ...(options.retry !== undefined ? { retry: options.retry } : {}),
    ...(options.driftCap !== undefined ? { driftCap: options.driftCap } : {})
  }
  return Step.make({
    ...common,
    input: options.input ?? promptAsInput((input: I) => {
      const { params } = request(input)
      return { model: params.model, system: params.system ?? null, messages: params.messages, tools: params.tools ?? null }
    })
  })
}

/**
 * Without an input Schema, the step's journaled input is its rendered request: a changed prompt is a new
 * input (never served an old reply), an unchanged one is served.
 */
const promptAsInput = <I>(render: (input: I) => unknown): Schema.Schema<I, unknown, never> =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the input's type is the caller's I; only its encoding is ours
  Schema.transform(Schema.Unknown, Schema.Any as Schema.Schema<any, any, never>, {
    strict: true,
    decode: (encoded) => encoded,
    encode: (input) => render(input)
  })

const descriptionOf = (schema: Schema.Schema.Any): string | undefined =>
  Option.getOrUndefined(SchemaAST.getDescriptionAnnotation(schema.ast))

/** A reply's OpenTelemetry GenAI attributes: the model that answered, its id, and the tokens billed. */
const replyAttributes = (reply: AnthropicSdk.Message): Record<string, unknown> => ({
  "gen_ai.response.model": reply.model,
  "gen_ai.response.id": reply.id,
  "gen_ai.usage.input_tokens": reply.usage.input_tokens,
  "gen_ai.usage.output_tokens": reply.usage.output_tokens,
  "gen_ai.usage.cache_read.input_tokens": reply.usage.cache_read_input_tokens ?? 0,
  "gen_ai.usage.cache_creation.input_tokens": reply.usage.cache_creation_input_tokens ?? 0,
  ...(reply.stop_reason !== null ? { "gen_ai.response.finish_reasons": [reply.stop_reason] } : {})
})

/** One Messages API call, as an Effect: interrupting it aborts the request. Errors are classified. */
const call = (
  client: AnthropicSdk,
  params: AnthropicSdk.MessageCreateParamsNonStreaming,
  stream: boolean
): Effect.Effect<AnthropicSdk.Message, Failure.Failure> =>
  Effect.tryPromise({
    try: (signal): PromiseLike<AnthropicSdk.Message> =>
      stream
        // The stream's final message takes its usage from `message_delta`; an `event: error` rejects it
        // with an `APIError` whose `error.type` the classifier reads.
        ? client.messages.stream(params, { signal }).finalMessage()
        : client.messages.create(params, { signal }),
    catch: Failure.classify
  })
