/**
 * Incident 2, "retry storm": a batch asks Claude five questions (all answered, all billed), then writes
 * the answers to a table whose `score` column does not exist yet. A task queue redelivers the job 21
 * times. `naiveBatch` is that job without ledgerflow; `retryStorm` is the same work as a pipeline.
 */
import { Anthropic, Pipeline, Step } from "@ledgerflow/core"
import type AnthropicSdk from "@anthropic-ai/sdk"
import type Database from "better-sqlite3"
import { Effect, Schema } from "effect"
import { AppDb } from "./app.js"

export const questions = [
  "Which campaign had the best click-through rate?",
  "Which campaign should get more budget next month?",
  "Which keywords wasted the most spend?",
  "Summarise the week-over-week trend.",
  "Draft one recommendation for the account owner."
]

const ask = Anthropic.messageStep({
  name: "ask",
  model: "claude-haiku-4-5",
  maxTokens: 300,
  input: Schema.Struct({ batch: Schema.String, question: Schema.String }),
  prompt: ({ batch, question }) => `Batch ${batch}. ${question}`
})

const saveAnswers = Step.make({
  name: "save-answers",
  input: Schema.Struct({ batch: Schema.String, answers: Schema.Array(Schema.String) }),
  output: Schema.Number,
  run: ({ answers, batch }) =>
    Effect.flatMap(AppDb, (db) =>
      Effect.try({
        try: () => {
          const insert = db.prepare("INSERT INTO batch_results (batch, question, answer, score) VALUES (?, ?, ?, ?)")
          db.transaction(() => answers.forEach((answer, i) => insert.run(batch, i, answer, answer.length)))()
          return answers.length
        },
        // The raw SqliteError: the classifier sees "has no column named score" and calls it Deterministic.
        catch: (error) => error
      }))
})

export const retryStorm = Pipeline.make({
  name: "retry-storm",
  version: 1,
  input: Schema.Struct({ batch: Schema.String }),
  output: Schema.Number,
  run: ({ batch }) =>
    Effect.gen(function*() {
      const answers = yield* Effect.forEach(questions, (question) => ask({ batch, question }), { concurrency: 5 })
      return yield* saveAnswers({ batch, answers })
    })
})

/** The application's table, as it is before the migration that adds `score`. */
export const createBatchTable = (db: Database.Database) =>
  db.exec("CREATE TABLE IF NOT EXISTS batch_results (batch TEXT, question INTEGER, answer TEXT)")

export const migrateBatchTable = (db: Database.Database) =>
  db.exec("ALTER TABLE batch_results ADD COLUMN score INTEGER")

/** The same job without ledgerflow: every delivery asks all five questions again, then fails the write. */
export const naiveBatch = async (client: AnthropicSdk, db: Database.Database, batch: string) => {
  const answers: Array<string> = []
  for (const question of questions) {
    const message = await client.messages.create({
      model: "claude-haiku-4-5",
      max_tokens: 300,
      messages: [{ role: "user", content: `Batch ${batch}. ${question}` }]
    })
    answers.push(message.content.map((b) => (b.type === "text" ? b.text : "")).join(""))
  }
  const insert = db.prepare("INSERT INTO batch_results (batch, question, answer, score) VALUES (?, ?, ?, ?)")
  answers.forEach((answer, i) => insert.run(batch, i, answer, answer.length))
}
