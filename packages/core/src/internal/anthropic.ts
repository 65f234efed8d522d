/**
 * The pure parts of the Anthropic step: the output tool built from a Schema, the structural fingerprint
 * of a reply that drifted, the structured value read out of a reply, and the prompt-size estimate.
 */
import type AnthropicSdk from "@anthropic-ai/sdk"
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"
import { hashJson } from "./hash.js"

/** A tool name the API accepts (`^[a-zA-Z0-9_-]{1,64}$`), from a step name. */
export const toolName = (stepName: string): string => stepName.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64)

/**
 * The tool whose input is the step's output: its `input_schema` is the Schema's JSON Schema (the encoded
 * side, which is what the model writes). Returns a message instead when the Schema cannot be one: a tool's
 * input must be a JSON object, and every part of it must have a JSON Schema.
 */
export const outputTool = (
  name: string,
  schema: Schema.Schema.AnyNoContext,
  description: string | undefined
): { readonly _tag: "Tool"; readonly tool: AnthropicSdk.Tool } | { readonly _tag: "Invalid"; readonly reason: string } => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  let json: JSONSchema.JsonSchema7
  try {
    json = JSONSchema.fromAST(schema.ast, { definitions, topLevelReferenceStrategy: "skip" })
  } catch (error) {
    return {
      _tag: "Invalid",
      reason: `it has no JSON Schema (${error instanceof Error ? error.message.split("\n").join("; ") : String(error)})`
    }
  }
  if (!("type" in json) || json.type !== "object") {
    return {
      _tag: "Invalid",
      reason: `a tool's input is a JSON object, and this Schema describes ${describeJsonSchema(json)}; wrap it, e.g. Schema.Struct({ value: ... })`
    }
  }
  const inputSchema: AnthropicSdk.Tool.InputSchema = {
    ...json,
    type: "object",
    ...(Object.keys(definitions).length > 0 ? { $defs: definitions } : {})
  }
  return {
    _tag: "Tool",
    tool: {
      name,
      description: description ?? "Return the result. Call this tool exactly once, with the complete result as its input.",
      input_schema: inputSchema
    }
  }
}

const describeJsonSchema = (json: JSONSchema.JsonSchema7): string =>
  "type" in json && typeof json.type === "string"
    ? `${/^[aeiou]/.test(json.type) ? "an" : "a"} ${json.type}`
    : "anyOf" in json
    ? "a union"
    : "$ref" in json
    ? "a reference"
    : "any value"

/**
 * The structure of a JSON value, without its values: `{id:number,tags:[string]}`. Keys are sorted; an
 * array shows the distinct shapes of its items. Deep or long structures are cut and end in a hash of the
 * whole, so that two different long shapes still differ.
 */
export const shapeOf = (value: unknown): string => {
  const full = shape(value, 0)
  return full.length <= 160 ? full : `${full.slice(0, 140)}…#${hashJson(full).slice(0, 8)}`
}

const shape = (value: unknown, depth: number): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) {
    if (depth > 8) return "[…]"
    const items = [...new Set(value.map((item) => shape(item, depth + 1)))].sort()
    return `[${items.join("|")}]`
  }
  if (typeof value === "object") {
    if (depth > 8) return "{…}"
    const record = value as Record<string, unknown>
    return `{${Object.keys(record).sort().map((key) => `${key}:${shape(record[key], depth + 1)}`).join(",")}}`
  }
  return typeof value
}

/** What a reply carried for a structured output: a tool call's input, JSON text, or text that is not JSON. */
export type Structured =
  | { readonly _tag: "Value"; readonly value: unknown; readonly from: "tool_use" | "text" }
  | { readonly _tag: "NotJson"; readonly shape: string }

/** The first tool call's input, else the reply's text parsed as JSON (a fenced block is unwrapped). */
export const structuredOf = (message: AnthropicSdk.Message, tool: string): Structured => {
  const calls = message.content.filter((block): block is AnthropicSdk.ToolUseBlock => block.type === "tool_use")
  const call = calls.find((block) => block.name === tool) ?? calls[0]
  if (call !== undefined) return { _tag: "Value", value: call.input, from: "tool_use" }
  const text = textOf(message).trim()
  if (text === "") return { _tag: "NotJson", shape: `empty reply (stop_reason ${message.stop_reason ?? "none"})` }
  const fenced = /^```(?:json)?\s*([\s\S]*?)\s*```$/i.exec(text)
  try {
    return { _tag: "Value", value: JSON.parse(fenced?.[1] ?? text), from: "text" }
  } catch {
    return { _tag: "NotJson", shape: "text (not JSON)" }
  }
}

/** The reply's text blocks, joined. */
export const textOf = (message: AnthropicSdk.Message): string =>
  message.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join("")

/** About four characters a token: the prompt's text, and the JSON of anything else (tools, tool results). */
export const estimateTokens = (request: {
  readonly system?: string | undefined
  readonly messages: ReadonlyArray<AnthropicSdk.MessageParam>
  readonly tools?: ReadonlyArray<AnthropicSdk.Tool> | undefined
}): number => {
  let chars = request.system?.length ?? 0
  for (const message of request.messages) {
    if (typeof message.content === "string") chars += message.content.length
    else {
      for (const block of message.content) {
        chars += block.type === "text" ? block.text.length : JSON.stringify(block).length
      }
    }
  }
  if (request.tools !== undefined && request.tools.length > 0) chars += JSON.stringify(request.tools).length
  return Math.max(1, Math.ceil(chars / 4))
}
