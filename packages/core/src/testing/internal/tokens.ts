/**
 * Token estimates for unscripted usage: about four characters a token, like English text. Message and
 * system text counts as its characters; any other block (tool use, tool result, image) and the tool
 * definitions count as their JSON.
 */
import type { MessagesRequest } from "./request.js"
import { isTextBlock } from "./request.js"

/** At least one token; ⌈characters / 4⌉. */
export const fromChars = (chars: number): number => Math.max(1, Math.ceil(chars / 4))

const blocksChars = (content: string | ReadonlyArray<unknown>): number =>
  typeof content === "string"
    ? content.length
    : content.reduce<number>(
      (sum, block) => sum + (isTextBlock(block) ? block.text.length : JSON.stringify(block).length),
      0
    )

/** The characters of the prompt: system + messages + tools. */
export const promptChars = (request: Pick<MessagesRequest, "system" | "messages" | "tools">): number =>
  (request.system === undefined ? 0 : blocksChars(request.system)) +
  request.messages.reduce((sum, message) => sum + blocksChars(message.content), 0) +
  (request.tools === undefined || request.tools.length === 0 ? 0 : JSON.stringify(request.tools).length)

export const promptTokens = (request: Pick<MessagesRequest, "system" | "messages" | "tools">): number =>
  fromChars(promptChars(request))
