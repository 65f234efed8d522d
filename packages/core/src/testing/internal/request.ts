/**
 * The part of a Messages API request body the stand-in reads, decoded leniently (unknown fields are
 * ignored), and the validation messages the real API would give.
 */
import * as Arr from "effect/Array"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

export const MessageParam = Schema.Struct({
  role: Schema.String,
  content: Schema.Union(Schema.String, Schema.Array(Schema.Unknown))
})
export type MessageParam = typeof MessageParam.Type

export const MessagesRequest = Schema.Struct({
  model: Schema.String,
  max_tokens: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  messages: Schema.Array(MessageParam),
  system: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.Unknown))),
  tools: Schema.optional(Schema.Array(Schema.Unknown)),
  stream: Schema.optional(Schema.Boolean)
})
export type MessagesRequest = typeof MessagesRequest.Type

/** The body of `POST /v1/messages/count_tokens`: the same, without `max_tokens`. */
export const CountTokensRequest = MessagesRequest.pipe(Schema.omit("max_tokens", "stream"))
export type CountTokensRequest = typeof CountTokensRequest.Type

/** `messages.0.content: Field required`, in the style of the real API's 400 messages. */
export const describeParseError = (error: ParseResult.ParseError): string =>
  Arr.map(ParseResult.ArrayFormatter.formatErrorSync(error), (issue) => {
    const path = issue.path.map(String).join(".")
    const message = issue._tag === "Missing" ? "Field required" : issue.message
    return path === "" ? message : `${path}: ${message}`
  }).join("; ")

export const TextBlock = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })
export const isTextBlock = Schema.is(TextBlock)
