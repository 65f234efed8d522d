/**
 * `ledgerflow cost` through the built binary, on a store where a paid step reported its usage, failed
 * later in the run, and was served from the log when the run was started again.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Engine, Failure, Pipeline, Step, Usage } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, Schema } from "effect"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ledgerflow, tempDir } from "./fixtures/cli.js"

let db = ""

beforeAll(async () => {
  db = join(tempDir(), "ledger.db")
  let webhookUp = false
  const summarize = Step.make({
    name: "summarize",
    output: Schema.String,
    run: (_, ctx) =>
      Effect.as(
        ctx.reportUsage(new Usage.Usage({ model: "claude-sonnet-4-6", inputTokens: 8_000, outputTokens: 500 })),
        "a summary"
      )
  })
  const webhook = Step.make({
    name: "webhook",
    input: Schema.String,
    output: Schema.String,
    run: () => webhookUp ? Effect.succeed("sent") : Effect.fail(Failure.transient("HTTP 503"))
  })
  const pipeline = Pipeline.make({
    name: "report",
    version: 1,
    input: Schema.Null,
    output: Schema.String,
    run: () => Effect.flatMap(summarize(), webhook)
  })
  const layer = Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: db })))
  await Effect.runPromise(Effect.gen(function*() {
    yield* Effect.either(Engine.run(pipeline, null, { key: "k" }))
    webhookUp = true
    yield* Engine.run(pipeline, null, { key: "k" })
  }).pipe(Effect.provide(layer)))
}, 60_000)

describe("ledgerflow cost", () => {
  it("shows spent, saved and wasted by step, with each step's share", async () => {
    const result = await ledgerflow(["--db", db, "cost"])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    const [header, row] = result.stdout.split("\n")
    expect(header).toMatch(/^STEP\s+SPENT\s+IN TOKENS\s+SHARE\s+SAVED\s+HELD\s+WASTED$/)
    // 8,000 input and 500 output tokens of claude-sonnet-4-6 at $3 / $15 per million: $0.0315, once.
    expect(row).toMatch(/^report\/summarize\s+\$0\.03\s+8,000\s+100%\s+\$0\.03\s+\$0\s+\$0$/)
    expect(result.stdout).toContain("report/summarize: 100% of input tokens")
    expect(result.stdout).toContain("1 paid calls; 1 served from the log instead")
  })

  it("--json prints one record a line: the rows, then the totals", async () => {
    const result = await ledgerflow(["--db", db, "cost", "--by", "model", "--json"])
    expect(result.code).toBe(0)
    const records = result.stdout.trim().split("\n").map((l) => JSON.parse(l))
    expect(records.map((r) => r.record)).toEqual(["row", "totals"])
    expect(records[0]).toMatchObject({ group: "claude-sonnet-4-6", spent: { inputTokens: 8000, calls: 1 }, saved: { calls: 1 } })
    // Money is an exact decimal string of dollars; the row names its model as a field.
    expect(records[0].spent.usd).toBe("0.0315")
    expect(records[0].model).toBe("claude-sonnet-4-6")
    expect(records[1]).toMatchObject({ by: "model", runs: 1, wasted: { usd: "0" }, held: { usd: "0" } })
  })

  it("--json rows carry pipeline and step as fields, not only the joined group", async () => {
    const result = await ledgerflow(["--db", db, "cost", "--by", "step", "--json"])
    const [row] = result.stdout.trim().split("\n").map((l) => JSON.parse(l))
    expect(row).toMatchObject({ record: "row", group: "report/summarize", pipeline: "report", step: "summarize" })
  })

  it("--config prices with the config's own table", async () => {
    const config = join(fileURLToPath(new URL(".", import.meta.url)), "fixtures", "prices.config.ts")
    const result = await ledgerflow(["--db", db, "--config", config, "cost", "--by", "model", "--json"])
    expect(result.stderr).toBe("")
    const [row, totals] = result.stdout.trim().split("\n").map((l) => JSON.parse(l))
    // 8,000 × $1 + 500 × $2 per million: $0.009 (not the list price's $0.0315).
    expect(row.spent.usd).toBe("0.009")
    expect(totals.pricesAsOf).toBe("2026-12-01")
  }, 180_000)

  it("a bad --by is bad usage: exit 2", async () => {
    const result = await ledgerflow(["--db", db, "cost", "--by", "color"])
    expect(result.code).toBe(2)
  })
})
