/**
 * Incident 1, "restart from scratch": fetch data → Claude summary (~8K input tokens) → write the report
 * file → insert a row → call the customer's webhook. The webhook answers 503; with ledgerflow the retry
 * resumes at the webhook, the summary is served from the log, and a failed run deletes its file and row.
 */
import { Anthropic, Failure, Pipeline, RetryPolicy, Step } from "@ledgerflow/core"
import { Effect, Schema } from "effect"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { AppDb, Webhook } from "./app.js"

const Campaign = Schema.Struct({ account: Schema.String, month: Schema.String })

const fetchData = Step.make({
  name: "fetch-data",
  input: Campaign,
  output: Schema.Struct({ rows: Schema.Array(Schema.String) }),
  run: ({ account, month }) =>
    Effect.succeed({
      rows: Array.from({ length: 500 }, (_, i) =>
        `${account},${month},campaign-${i % 12},impressions=${1000 + i * 37},clicks=${20 + (i % 17)},spend=${(12.5 + i).toFixed(2)}`)
    })
})

const summarize = Anthropic.messageStep({
  name: "summarize",
  model: "claude-sonnet-4-6",
  maxTokens: 600,
  input: Schema.Struct({ rows: Schema.Array(Schema.String) }),
  system: "You write a one-paragraph performance summary of an ad account for its owner.",
  prompt: ({ rows }) => `Summarise this month's campaign data:\n${rows.join("\n")}`
})

const writeReport = Step.make({
  name: "write-report",
  input: Schema.Struct({ account: Schema.String, month: Schema.String, summary: Schema.String }),
  output: Schema.String,
  run: ({ account, month, summary }) =>
    Effect.sync(() => {
      mkdirSync(".ledgerflow/reports", { recursive: true })
      const file = join(".ledgerflow/reports", `${account}-${month}.txt`)
      writeFileSync(file, summary)
      return file
    }),
  // A failed run leaves no orphan report behind.
  compensate: (file) => Effect.sync(() => rmSync(file, { force: true }))
})

const insertRow = Step.make({
  name: "insert-row",
  input: Schema.Struct({ account: Schema.String, month: Schema.String, file: Schema.String }),
  output: Schema.String,
  run: ({ account, file, month }, ctx) =>
    Effect.flatMap(AppDb, (db) =>
      Effect.try({
        try: () => {
          db.exec("CREATE TABLE IF NOT EXISTS reports (idempotency_key TEXT PRIMARY KEY, account TEXT, month TEXT, file TEXT)")
          // The idempotency key makes a repeated insert (after a crash mid-step) a no-op.
          db.prepare("INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?)").run(ctx.idempotencyKey, account, month, file)
          return ctx.idempotencyKey
        },
        catch: (error) => error
      })),
  compensate: (key) =>
    Effect.flatMap(AppDb, (db) => Effect.sync(() => db.prepare("DELETE FROM reports WHERE idempotency_key = ?").run(key)))
})

const callWebhook = Step.make({
  name: "webhook",
  input: Schema.Struct({ account: Schema.String, file: Schema.String }),
  output: Schema.Number,
  retry: RetryPolicy.exponential({ base: "200 millis", maxDelay: "2 seconds", maxAttempts: 2, maxElapsed: "1 minute" }),
  run: (payload, ctx) =>
    Effect.flatMap(Webhook, ({ url }) =>
      Effect.tryPromise({
        try: async () => {
          const response = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": ctx.idempotencyKey },
            body: JSON.stringify(payload)
          })
          // An HTTP error carries its status, so the classifier can tell a 503 from a 400.
          if (!response.ok) throw Object.assign(new Error(`webhook answered ${response.status}`), { status: response.status })
          return response.status
        },
        catch: (error) => Failure.classify(error)
      }))
})

export const adReport = Pipeline.make({
  name: "ad-report",
  version: 1,
  input: Campaign,
  output: Schema.Struct({ file: Schema.String, summary: Schema.String }),
  run: (campaign) =>
    Effect.gen(function*() {
      const data = yield* fetchData(campaign)
      const summary = yield* summarize(data)
      const file = yield* writeReport({ ...campaign, summary })
      yield* insertRow({ ...campaign, file })
      yield* callWebhook({ account: campaign.account, file })
      return { file, summary }
    })
})
