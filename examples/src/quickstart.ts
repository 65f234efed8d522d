import { Anthropic, Engine, Failure, Pipeline, Step } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, Schema } from "effect"

const summarize = Anthropic.messageStep({
  name: "summarize", model: "claude-sonnet-4-6", maxTokens: 600,
  input: Schema.Struct({ account: Schema.String }),
  prompt: ({ account }) => `Summarise last month's ad spend of ${account} in one paragraph.`
})
const webhook = Step.make({
  name: "webhook", input: Schema.String, output: Schema.Number,
  run: (summary) => Effect.tryPromise({
    try: () => fetch("https://hooks.example.com/report", { method: "POST", body: summary })
      .then((r) => (r.ok ? r.status : Promise.reject(Object.assign(new Error(`HTTP ${r.status}`), { status: r.status })))),
    catch: Failure.classify // a 503 is Transient (retried), a 400 Deterministic (not)
  })
})
export const report = Pipeline.make({
  name: "ad-report", version: 1, input: Schema.Struct({ account: Schema.String }), output: Schema.Number,
  run: (input) => Effect.flatMap(summarize(input), webhook)
})

const store = SqliteStore.layer({ filename: ".ledgerflow/ledger.db" })
export const main = Engine.run(report, { account: "acme" }, { key: "acme-2026-11" }).pipe(
  Effect.provide(Layer.mergeAll(Engine.layer().pipe(Layer.provide(store)), Anthropic.layer()))
)
