/**
 * Renders a scripted reply as the Messages API would send it: a `Message` body, or the server-sent
 * events of a stream (`message_start` with output tokens ≤ 1, content blocks in deltas, the final usage
 * in `message_delta`, `message_stop`). Also the error body shape.
 */
import * as Arr from "effect/Array"
import type { MessagesRequest } from "./request.js"
import { isTextBlock } from "./request.js"
import type { DefaultReply, Reply } from "./script.js"
import * as Tokens from "./tokens.js"

export type Block =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }

export interface Usage {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cache_creation_input_tokens: number
  readonly cache_read_input_tokens: number
}

/** A reply made concrete for one request: its ids, content and usage. */
export interface Rendered {
  readonly id: string
  readonly model: string
  readonly content: ReadonlyArray<Block>
  readonly stopReason: string
  readonly usage: Usage
}

export interface Ids {
  readonly message: string
  readonly toolUse: string
}

/** The text of the last user message: what the `"echo"` default reply answers. */
export const lastUserText = (request: MessagesRequest): string => {
  const last = Arr.findLast(request.messages, (message) => message.role === "user")
  if (last._tag === "None") return ""
  const content = last.value.content
  return typeof content === "string"
    ? content
    : Arr.filter(content, isTextBlock).map((block) => block.text).join("")
}

export const resolveDefault = (defaultReply: DefaultReply, request: MessagesRequest): Reply =>
  defaultReply === "echo" ? { text: lastUserText(request) || "(empty)" } : defaultReply

const stringify = (json: unknown): string => JSON.stringify(json) ?? "null"

const blocksOf = (reply: Reply, ids: Ids): ReadonlyArray<Block> => {
  if ("toolUse" in reply) {
    const call: Block = {
      type: "tool_use",
      id: reply.toolUse.id ?? ids.toolUse,
      name: reply.toolUse.name,
      input: reply.toolUse.input
    }
    return reply.text === undefined ? [call] : [{ type: "text", text: reply.text }, call]
  }
  if ("json" in reply) return [{ type: "text", text: stringify(reply.json) }]
  return [{ type: "text", text: reply.text }]
}

const blockChars = (block: Block): number =>
  block.type === "text" ? block.text.length : block.name.length + stringify(block.input).length

export const render = (reply: Reply, request: MessagesRequest, ids: Ids): Rendered => {
  const content = blocksOf(reply, ids)
  const scripted = reply.usage
  const cacheWrite = scripted?.cache_creation_input_tokens ?? 0
  const cacheRead = scripted?.cache_read_input_tokens ?? 0
  // The API reports cached prompt tokens apart from `input_tokens`: input + cache write + cache read
  // is the whole prompt.
  const input = scripted?.input_tokens ?? Math.max(1, Tokens.promptTokens(request) - cacheWrite - cacheRead)
  const output = scripted?.output_tokens ??
    Tokens.fromChars(content.reduce((sum, block) => sum + blockChars(block), 0))
  return {
    id: ids.message,
    model: request.model,
    content,
    stopReason: reply.stopReason ?? ("toolUse" in reply ? "tool_use" : "end_turn"),
    usage: {
      input_tokens: input,
      output_tokens: output,
      cache_creation_input_tokens: cacheWrite,
      cache_read_input_tokens: cacheRead
    }
  }
}

/** The non-streaming response body. */
export const messageBody = (rendered: Rendered) => ({
  id: rendered.id,
  type: "message",
  role: "assistant",
  model: rendered.model,
  content: rendered.content,
  stop_reason: rendered.stopReason,
  stop_sequence: null,
  usage: { ...rendered.usage, service_tier: "standard" }
})

export interface SseEvent {
  readonly event: string
  readonly data: unknown
}

const chunkSize = 16

/** Splits on code points, so a delta never holds half a surrogate pair. */
const chunks = (text: string): ReadonlyArray<string> =>
  text.length === 0 ? [""] : Arr.chunksOf(Array.from(text), chunkSize).map((part) => part.join(""))

const blockEvents = (block: Block, index: number): ReadonlyArray<SseEvent> => {
  const start: SseEvent = {
    event: "content_block_start",
    data: {
      type: "content_block_start",
      index,
      content_block: block.type === "text"
        ? { type: "text", text: "" }
        : { type: "tool_use", id: block.id, name: block.name, input: {} }
    }
  }
  const deltas = block.type === "text"
    ? chunks(block.text).map((text) => ({ type: "text_delta", text }))
    : chunks(stringify(block.input)).map((partial_json) => ({ type: "input_json_delta", partial_json }))
  return [
    start,
    ...deltas.map((delta): SseEvent => ({
      event: "content_block_delta",
      data: { type: "content_block_delta", index, delta }
    })),
    { event: "content_block_stop", data: { type: "content_block_stop", index } }
  ]
}

/** The events of a streamed reply, in order. */
export const streamEvents = (rendered: Rendered): ReadonlyArray<SseEvent> => [
  {
    event: "message_start",
    data: {
      type: "message_start",
      message: {
        ...messageBody(rendered),
        content: [],
        stop_reason: null,
        // Like the real API: output tokens are not known yet; the final count is in `message_delta`.
        usage: {
          ...rendered.usage,
          output_tokens: Math.min(1, rendered.usage.output_tokens),
          service_tier: "standard"
        }
      }
    }
  },
  ...rendered.content.flatMap(blockEvents),
  {
    event: "message_delta",
    data: {
      type: "message_delta",
      delta: { stop_reason: rendered.stopReason, stop_sequence: null },
      usage: rendered.usage
    }
  },
  { event: "message_stop", data: { type: "message_stop" } }
]

export const encodeEvent = (event: SseEvent): string => `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`

/** The API's error body. */
export const errorBody = (options: {
  readonly type: string
  readonly message: string
  readonly requestId: string
  readonly errorCode?: string | undefined
}) => ({
  type: "error",
  error: {
    type: options.type,
    message: options.message,
    ...(options.errorCode === undefined ? {} : { details: { error_code: options.errorCode } })
  },
  request_id: options.requestId
})

const typeByStatus: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  409: "conflict_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error"
}

export const errorTypeForStatus = (status: number): string =>
  typeByStatus[status] ?? (status >= 500 ? "api_error" : "invalid_request_error")

const statusByType: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  conflict_error: 409,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529
}

export const statusForErrorType = (type: string): number => statusByType[type] ?? 500

const messageByType: Record<string, string> = {
  overloaded_error: "Overloaded",
  rate_limit_error: "Number of request tokens has exceeded your per-minute rate limit",
  api_error: "Internal server error",
  timeout_error: "Request timed out"
}

export const defaultErrorMessage = (type: string): string => messageByType[type] ?? `${type} (injected by the stand-in)`
