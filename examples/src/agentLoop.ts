/**
 * Incident 3, "invisible waste": bots answer each other in a thread, each re-sending the whole thread as
 * context. The loop guard stops the chain past its limit and names who drove it; the context ceiling
 * records every turn whose prompt outgrew what the task needs.
 */
import { Anthropic, LoopGuard, Pipeline } from "@ledgerflow/core"
import { Effect, Schema } from "effect"

export const bots = ["triage-bot", "summary-bot", "followup-bot"] as const

const guard = LoopGuard.step({ name: "loop-guard", limit: 10 })

const reply = Anthropic.messageStep({
  name: "reply",
  model: "claude-haiku-4-5",
  maxTokens: 200,
  // A reply needs the last few messages, ~800 tokens; the bots send the whole thread.
  contextCeiling: 800,
  input: Schema.Struct({ bot: Schema.String, thread: Schema.Array(Schema.String) }),
  system: ({ bot }) => `You are ${bot}. Answer the last message in the thread.`,
  prompt: ({ thread }) => thread.join("\n\n")
})

export const agentLoop = Pipeline.make({
  name: "agent-loop",
  version: 1,
  input: Schema.Struct({ thread: Schema.String, opening: Schema.String }),
  output: Schema.Array(Schema.String),
  run: ({ opening, thread }) =>
    Effect.gen(function*() {
      const messages: Array<string> = [opening]
      // The bots would go on and on: each reply prompts the next bot. The guard ends it.
      for (let turn = 0; turn < 100; turn++) {
        const bot = bots[turn % bots.length]!
        yield* guard({ key: thread, actor: bot })
        messages.push(`${bot}: ${yield* reply({ bot, thread: messages })}`)
      }
      return messages
    })
})
