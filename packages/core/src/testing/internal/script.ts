/**
 * The stand-in's script language as Schemas: replies and faults, consumed in order. They are data, so
 * a script can come from a JSON file or over HTTP (`POST /_script`) as well as from code.
 */
import * as Schema from "effect/Schema"

const Tokens = Schema.NonNegativeInt

/** Any JSON value; unlike `Schema.Unknown`, a missing key does not pass as `undefined`. */
const Json = Schema.Unknown.pipe(Schema.filter((u) => u === undefined ? "is missing" : true))

/**
 * Usage numbers to report for a reply. A field left out is derived: input tokens from the prompt size
 * (≈ characters / 4, minus any scripted cache tokens), output tokens from the reply's length, cache
 * tokens 0.
 */
export const ScriptedUsage = Schema.Struct({
  input_tokens: Schema.optional(Tokens),
  output_tokens: Schema.optional(Tokens),
  cache_creation_input_tokens: Schema.optional(Tokens),
  cache_read_input_tokens: Schema.optional(Tokens)
}).annotations({ identifier: "ScriptedUsage" })
export type ScriptedUsage = typeof ScriptedUsage.Type

const StopReason = Schema.Literal("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")

const replyFields = {
  usage: Schema.optional(ScriptedUsage),
  /** Overrides the natural stop reason (`end_turn`, or `tool_use` for a tool call), e.g. `max_tokens`. */
  stopReason: Schema.optional(StopReason)
}

/** A plain text answer. */
export const TextReply = Schema.Struct({ text: Schema.String, ...replyFields })
  .annotations({ identifier: "TextReply" })
export type TextReply = typeof TextReply.Type

/**
 * A text answer whose text is `JSON.stringify(json)`: structured output. Script a value of the wrong
 * shape to reproduce schema drift.
 */
export const JsonReply = Schema.Struct({ json: Json, ...replyFields }).annotations({ identifier: "JsonReply" })
export type JsonReply = typeof JsonReply.Type

/** A tool call (`stop_reason: "tool_use"`), optionally preceded by some text. */
export const ToolUseReply = Schema.Struct({
  toolUse: Schema.Struct({ name: Schema.String, input: Json, id: Schema.optional(Schema.String) }),
  text: Schema.optional(Schema.String),
  ...replyFields
}).annotations({ identifier: "ToolUseReply" })
export type ToolUseReply = typeof ToolUseReply.Type

/** A successful answer; it is billed once it has been written in full. */
// A tool call may carry `text` too: it is tried first.
export const Reply = Schema.Union(ToolUseReply, JsonReply, TextReply).annotations({ identifier: "Reply" })
export type Reply = typeof Reply.Type

/**
 * An HTTP error: `{"type":"error","error":{"type":errorType,"message":message}}` with the given status.
 * `errorType` defaults from the status (529 → `overloaded_error`, 429 → `rate_limit_error`, …).
 * `retryAfter` is sent as `retry-after` (seconds, or an HTTP-date string), `retryAfterMs` as
 * `retry-after-ms`, `shouldRetry` as `x-should-retry`, `errorCode` as `error.details.error_code`.
 */
export const StatusFault = Schema.Struct({
  fault: Schema.Literal("status"),
  status: Schema.Int.pipe(Schema.between(400, 599)),
  errorType: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  retryAfter: Schema.optional(Schema.Union(Schema.Number, Schema.String)),
  retryAfterMs: Schema.optional(Schema.Number),
  shouldRetry: Schema.optional(Schema.Boolean),
  errorCode: Schema.optional(Schema.String)
}).annotations({ identifier: "StatusFault" })
export type StatusFault = typeof StatusFault.Type

/** The connection is destroyed before any response byte is sent. */
export const ResetFault = Schema.Struct({ fault: Schema.Literal("reset") })
  .annotations({ identifier: "ResetFault" })
export type ResetFault = typeof ResetFault.Type

/**
 * `200` headers are sent, then the connection is destroyed. With `afterEvents` (streaming requests
 * only) that many SSE events of the reply are sent first: a connection lost mid-stream.
 */
export const CutAfterHeadersFault = Schema.Struct({
  fault: Schema.Literal("cutAfterHeaders"),
  afterEvents: Schema.optional(Schema.NonNegativeInt),
  reply: Schema.optional(Reply)
}).annotations({ identifier: "CutAfterHeadersFault" })
export type CutAfterHeadersFault = typeof CutAfterHeadersFault.Type

/** Nothing is sent for `delayMs` (real time), then `then` is answered: for client timeouts. */
export const SlowFault = Schema.Struct({
  fault: Schema.Literal("slow"),
  delayMs: Schema.NonNegativeInt,
  then: Reply
}).annotations({ identifier: "SlowFault" })
export type SlowFault = typeof SlowFault.Type

/**
 * A streaming request gets a `200` SSE stream with `afterEvents` events of `reply` (default: the default
 * reply; default count 3: `message_start`, `content_block_start`, one delta), then
 * `event: error` with `{"type":"error","error":{"type":errorType,"message":…}}`, then the end of the
 * stream. A non-streaming request gets the matching HTTP status error instead (529 for
 * `overloaded_error`, …). Not billed.
 */
export const StreamErrorFault = Schema.Struct({
  fault: Schema.Literal("streamError"),
  errorType: Schema.String,
  message: Schema.optional(Schema.String),
  afterEvents: Schema.optional(Schema.NonNegativeInt),
  reply: Schema.optional(Reply)
}).annotations({ identifier: "StreamErrorFault" })
export type StreamErrorFault = typeof StreamErrorFault.Type

/** A failure to inject; none is billed. */
export const Fault = Schema.Union(StatusFault, ResetFault, CutAfterHeadersFault, SlowFault, StreamErrorFault)
  .annotations({ identifier: "Fault" })
export type Fault = typeof Fault.Type

/** One entry of the script queue: the answer to one `POST /v1/messages`. */
export const Script = Schema.Union(Fault, Reply).annotations({ identifier: "Script" })
export type Script = typeof Script.Type

/** One script entry or a list of them, as JSON text (script files, `POST /_script`). */
export const ScriptFromJson = Schema.parseJson(Schema.Union(Script, Schema.Array(Script)))

/** Billed tokens (and billed calls) of one model. */
export const ModelMeter = Schema.Struct({
  input: Schema.Number,
  output: Schema.Number,
  cacheWrite: Schema.Number,
  cacheRead: Schema.Number,
  calls: Schema.Number
}).annotations({ identifier: "ModelMeter" })
export type ModelMeter = typeof ModelMeter.Type

/**
 * What the stand-in saw and billed. `calls` counts every `POST /v1/messages` received (invalid ones and
 * faults included); `billedCalls` and `byModel` count only replies written in full: a fault, a stream
 * that ended in `event: error`, or a reply whose client went away first is not billed.
 * `requests` holds every received body (parsed JSON, or the raw text when it was not JSON).
 */
export const Meter = Schema.Struct({
  calls: Schema.Number,
  billedCalls: Schema.Number,
  byModel: Schema.Record({ key: Schema.String, value: ModelMeter }),
  requests: Schema.Array(Schema.Unknown)
}).annotations({ identifier: "Meter" })
export type Meter = typeof Meter.Type

export const emptyMeter: Meter = { calls: 0, billedCalls: 0, byModel: {}, requests: [] }

/** How the stand-in answers when the script queue is empty: echo the last user text, or a fixed reply. */
export const DefaultReply = Schema.Union(Schema.Literal("echo"), Reply).annotations({ identifier: "DefaultReply" })
export type DefaultReply = typeof DefaultReply.Type
