/**
 * Deliveries through the built binary: a key delivered 21 times (a queue retrying a deterministic failure)
 * executed once; `runs`, `show` and `failures` say so, in text and in --json.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Engine, Failure, Pipeline, Step } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, Schema } from "effect"
import { join } from "node:path"
import { ledgerflow, tempDir } from "./fixtures/cli.js"

let db = ""
let executed = 0

beforeAll(async () => {
  db = join(tempDir(), "ledger.db")
  const write = Step.make({
    name: "write-row",
    output: Schema.Number,
    run: () => Effect.suspend(() => (executed++, Effect.fail(Failure.deterministic("column \"x\" does not exist", { rule: "postgres-code" }))))
  })
  const pipeline = Pipeline.make({ name: "storm", version: 1, input: Schema.Null, output: Schema.Number, run: () => write() })
  const layer = Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: db })))
  await Effect.runPromise(Effect.gen(function*() {
    for (let i = 0; i < 21; i++) yield* Effect.either(Engine.run(pipeline, null, { key: "batch-7" }))
  }).pipe(Effect.provide(layer)))
}, 60_000)

describe("deliveries", () => {
  it("failures shows 21 deliveries of one failing key as 1 execution, in text and --json", async () => {
    expect(executed).toBe(1)
    const text = await ledgerflow(["--db", db, "failures"])
    expect(text.stderr).toBe("")
    expect(text.stdout).toContain("21 deliveries, 1 execution")
    const json = await ledgerflow(["--db", db, "failures", "--json"])
    expect(JSON.parse(json.stdout.trim())).toMatchObject({ count: 1, deliveries: 21, executions: 1 })
  }, 240_000)

  it("runs --json and show tell the run's deliveries", async () => {
    const runs = await ledgerflow(["--db", db, "runs", "--json"])
    const run = JSON.parse(runs.stdout.trim())
    expect(run).toMatchObject({ key: "batch-7", deliveries: 21 })
    expect(run.lastDeliveredAt).toBeGreaterThanOrEqual(run.createdAt)
    const show = await ledgerflow(["--db", db, "show", run.runId])
    expect(show.stdout).toMatch(/deliveries\s+21 deliveries, 1 execution/)
    const shown = await ledgerflow(["--db", db, "show", run.runId, "--json"])
    expect(JSON.parse(shown.stdout).run).toMatchObject({ deliveries: 21, executions: 1 })
  }, 240_000)
})
