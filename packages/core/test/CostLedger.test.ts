import { assert, describe, expect, it, layer } from "@effect/vitest"
import { Anthropic, CostLedger, Engine, Failure, Pipeline, Pricing, RetryPolicy, Step, Usage } from "@ledgerflow/core"
import { AnthropicStandIn } from "@ledgerflow/core/testing"
import { Effect, Exit, Schema, TestClock } from "effect"
import { cents, EngineMemory, fresh, meter, meterDollars, promptOf, script } from "./fixtures/claude.js"

const once = RetryPolicy.exponential({ base: "1 second", maxDelay: "1 second", maxAttempts: 1, maxElapsed: "1 minute", jitter: 0 })

/** The seed's 5-step pipeline: fetch → Claude summary (~8K input tokens) → write file → insert row → webhook. */
const adReport = (world: { webhookFailures: number; files: number; rows: number; fetches: number }) => {
  const fetch = Step.make({
    name: "fetch",
    input: Schema.Struct({ account: Schema.String }),
    output: Schema.Struct({ rows: Schema.String }),
    run: () => Effect.sync(() => (world.fetches++, { rows: promptOf(8000) }))
  })
  const summarize = Anthropic.messageStep({
    name: "summarize",
    model: "claude-sonnet-4-6",
    maxTokens: 1024,
    input: Schema.Struct({ rows: Schema.String }),
    prompt: ({ rows }) => rows
  })
  const writeFile = Step.make({
    name: "write-file",
    input: Schema.String,
    output: Schema.String,
    run: (summary) => Effect.sync(() => (world.files++, `s3://reports/${summary.length}.md`)),
    compensate: () => Effect.sync(() => void world.files--)
  })
  const insertRow = Step.make({
    name: "insert-row",
    input: Schema.String,
    output: Schema.Number,
    run: () => Effect.sync(() => (world.rows++, 42)),
    compensate: () => Effect.sync(() => void world.rows--)
  })
  const webhook = Step.make({
    name: "webhook",
    input: Schema.Number,
    output: Schema.Literal("sent"),
    retry: once,
    run: () =>
      world.webhookFailures-- > 0
        ? Effect.fail({ status: 503, message: "Service Unavailable" })
        : Effect.succeed("sent" as const)
  })
  return Pipeline.make({
    name: "ad-report",
    version: 1,
    input: Schema.Struct({ account: Schema.String }),
    output: Schema.Struct({ file: Schema.String, row: Schema.Number }),
    run: (input) =>
      Effect.gen(function*() {
        const data = yield* fetch(input)
        const summary = yield* summarize(data)
        const file = yield* writeFile(summary)
        const row = yield* insertRow(file)
        yield* webhook(row)
        return { file, row }
      })
  })
}

/** The seed's retry storm: a batch of five Claude classifications, then a DB write whose column is missing. */
const batch = (world: { migrated: boolean; writes: number }) => {
  const classify = Anthropic.messageStep({
    name: "classify",
    model: "claude-haiku-4-5",
    maxTokens: 256,
    input: Schema.String,
    prompt: (doc) => `Classify this support ticket:\n${doc}`
  })
  const writeResults = Step.make({
    name: "write-results",
    input: Schema.Array(Schema.String),
    output: Schema.Number,
    run: (labels) =>
      Effect.suspend(() => {
        world.writes++
        return world.migrated
          ? Effect.succeed(labels.length)
          : Effect.fail(Object.assign(new Error("column \"x\" does not exist"), { code: "42703" }))
      })
  })
  return Pipeline.make({
    name: "ticket-batch",
    version: 1,
    input: Schema.Array(Schema.String),
    output: Schema.Number,
    run: (docs) =>
      Effect.gen(function*() {
        const labels = yield* Effect.forEach(docs, (doc) => classify(doc))
        return yield* writeResults(labels)
      })
  })
}

const row = (report: CostLedger.Report, group: string) => {
  const found = report.rows.find((r) => r.group === group)
  assert(found !== undefined, `no row ${group} in ${report.rows.map((r) => r.group).join(", ")}`)
  return found
}

layer(AnthropicStandIn.layer())("CostLedger: spent, saved and wasted, from the log", (it) => {
  it.effect("the seed: a webhook 503 across three starts of one key bills one summary; the ledger shows 1 spent, 2 saved, 0 wasted", () =>
    Effect.gen(function*() {
      const world = { webhookFailures: 2, files: 0, rows: 0, fetches: 0 }
      const pipeline = adReport(world)
      const start = Engine.run(pipeline, { account: "acme" }, { key: "acme-2026-11" })
      const first = yield* Effect.flip(start)
      expect(first).toMatchObject({ _tag: "Transient", rule: "http-status" })
      const second = yield* Effect.flip(start)
      expect(second).toMatchObject({ _tag: "Transient", rule: "http-status" })
      expect(yield* start).toEqual({ file: "s3://reports/32000.md", row: 42 })
      // The failed runs were rolled back (file and row undone), then written again by the start that completed.
      expect(world).toMatchObject({ files: 1, rows: 1, fetches: 1 })

      const m = yield* meter
      expect(m.billedCalls).toBe(1)
      expect(m.byModel["claude-sonnet-4-6"]).toMatchObject({ calls: 1, input: 8000 })

      const report = yield* CostLedger.report({ by: "step" })
      const summarize = row(report, "ad-report/summarize")
      expect(summarize.spent).toMatchObject({ calls: 1, inputTokens: 8000 })
      expect(summarize.saved).toMatchObject({ calls: 2, inputTokens: 16000, outputTokens: 2 * summarize.spent.outputTokens })
      expect(summarize.saved.usd).toBeCloseTo(2 * summarize.spent.usd, 12)
      expect(summarize.wasted).toEqual(CostLedger.zero)
      expect(summarize.share.inputTokens).toBe(1)
      expect(report.totals.wasted).toEqual(CostLedger.zero)
      expect(report.totals.unpriced).toEqual([])
      // The ledger's dollars are the meter's billed tokens × list prices, to the cent.
      expect(cents(report.totals.spent.usd)).toBe(cents(meterDollars(m)))
      expect(report.totals.spent.usd).toBeCloseTo(meterDollars(m), 12)
      // One run (one key), whatever the grouping.
      const byRun = yield* CostLedger.report({ by: "run" })
      expect(byRun.rows).toHaveLength(1)
      expect(byRun.rows[0]!.saved.calls).toBe(2)
      const byKey = yield* CostLedger.report({ by: "key" })
      expect(byKey.rows.map((r) => r.group)).toEqual(["acme-2026-11"])
    }).pipe(Effect.provide(fresh)))

  it.effect("the retry storm: 5 Claude calls then a missing column, delivered 21 times, bill 5 calls (not 105), 20 redeliveries saved, the batch held until a resume serves it", () =>
    Effect.gen(function*() {
      const world = { migrated: false, writes: 0 }
      const pipeline = batch(world)
      const docs = ["refund please", "login broken", "invoice wrong", "cancel plan", "thanks!"].map((t) => `${t} ${promptOf(400)}`)
      const deliveries: Array<Exit.Exit<number, unknown>> = []
      for (let i = 0; i < 21; i++) deliveries.push(yield* Effect.exit(Engine.run(pipeline, docs, { key: "batch-7" })))
      const [failure] = deliveries.map((d) => (Exit.isFailure(d) ? d.cause : undefined))
      expect(deliveries.every((d) => Exit.isFailure(d))).toBe(true)
      expect(failure?.toString()).toContain("column \\\"x\\\" does not exist")
      expect(world.writes).toBe(1)

      const m = yield* meter
      expect(m.billedCalls).toBe(5)

      const failed = yield* CostLedger.report({ by: "step" })
      expect(failed.totals.spent.calls).toBe(5)
      // Wasted, explicitly: nothing. The five paid classifications are journaled and kept; the failure was
      // deterministic, so the 20 redeliveries executed nothing: each was answered with the stored failure and
      // did not pay the five calls again (saved 20 × the batch). The batch itself is held by the failed run.
      const times = (t: CostLedger.Tally, n: number): CostLedger.Tally => ({
        usd: t.usd * n,
        inputTokens: t.inputTokens * n,
        outputTokens: t.outputTokens * n,
        cacheWriteTokens: t.cacheWriteTokens * n,
        cacheReadTokens: t.cacheReadTokens * n,
        calls: t.calls * n
      })
      const inCents = (t: CostLedger.Tally) => ({ ...t, usd: cents(t.usd) })
      const [run] = yield* Engine.runs({ key: "batch-7" })
      expect(run).toMatchObject({ deliveries: 21, status: "failed" })
      expect(failed.totals.wasted).toEqual(CostLedger.zero)
      expect(inCents(failed.totals.saved)).toEqual(inCents(times(failed.totals.spent, 20)))
      expect(failed.totals.held).toEqual(failed.totals.spent)
      expect(failed.holding).toEqual([
        { runId: run!.runId, pipeline: "ticket-batch", key: "batch-7", status: "failed", held: failed.totals.spent }
      ])
      expect(row(failed, "ticket-batch/classify").spent.calls).toBe(5)
      expect(row(failed, "ticket-batch/classify").held.calls).toBe(5)
      expect(cents(failed.totals.spent.usd)).toBe(cents(meterDollars(m)))

      // The migration lands; an explicit resume finishes the run: the five classifications are served, and
      // what was held is saved.
      world.migrated = true
      expect(yield* Engine.resume(pipeline, run!.runId)).toBe(5)
      expect((yield* meter).billedCalls).toBe(5)
      const resumed = yield* CostLedger.report({ by: "step" })
      expect(resumed.totals.spent).toEqual(failed.totals.spent)
      expect(inCents(resumed.totals.saved)).toEqual(inCents(times(failed.totals.spent, 21)))
      expect(resumed.totals.held).toEqual(CostLedger.zero)
      expect(resumed.holding).toEqual([])
      expect(resumed.totals.wasted).toEqual(CostLedger.zero)
      // A redelivery of the completed key is answered with its output: one more batch not paid again.
      expect(yield* Engine.run(pipeline, docs, { key: "batch-7" })).toBe(5)
      const answered = yield* CostLedger.report({ by: "step" })
      expect(inCents(answered.totals.saved)).toEqual(inCents(times(failed.totals.spent, 22)))
      expect((yield* Engine.runs({ key: "batch-7" }))[0]).toMatchObject({ deliveries: 22 })
    }).pipe(Effect.provide(fresh)))

  it.effect("the ledger's dollars equal the meter's billed tokens × prices, to the cent, across models, cache tokens, drift and errors", () =>
    Effect.gen(function*() {
      yield* script(
        { text: "a", usage: { input_tokens: 123_457, output_tokens: 9_876, cache_creation_input_tokens: 20_011, cache_read_input_tokens: 500_003 } },
        { fault: "status", status: 529 },
        { json: { n: "wrong" }, usage: { input_tokens: 33_333, output_tokens: 777 } },
        { json: { n: 3 }, usage: { input_tokens: 33_333, output_tokens: 801, cache_read_input_tokens: 12_345 } },
        { text: "c", usage: { input_tokens: 250_001, output_tokens: 64_999, cache_creation_input_tokens: 1_234 } }
      )
      const sonnet = Anthropic.messageStep({ name: "draft", model: "claude-sonnet-4-6", maxTokens: 16_000, input: Schema.String, prompt: (s) => s, retry: once })
      const haiku = Anthropic.messageStep({
        name: "count",
        model: "claude-haiku-4-5",
        maxTokens: 100,
        input: Schema.String,
        output: Schema.Struct({ n: Schema.Number }),
        prompt: (s) => s
      })
      const opus = Anthropic.messageStep({ name: "review", model: "claude-opus-4-6", maxTokens: 64_000, input: Schema.String, prompt: (s) => s, stream: true })
      const pipeline = Pipeline.make({
        name: "mixed",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        run: (s) =>
          Effect.gen(function*() {
            const a = yield* sonnet(s)
            const fail = yield* Effect.either(sonnet(`${s}!`))
            assert(fail._tag === "Left")
            const n = yield* haiku(a)
            return yield* opus(`${a}${n.n}`)
          })
      })
      expect(yield* Engine.run(pipeline, "go")).toBe("c")
      const m = yield* meter
      expect(m.billedCalls).toBe(4)
      const report = yield* CostLedger.report({ by: "model" })
      expect(cents(report.totals.spent.usd)).toBe(cents(meterDollars(m)))
      expect(report.totals.spent.usd).toBeCloseTo(meterDollars(m), 10)
      for (const [model, billed] of Object.entries(m.byModel)) {
        expect(row(report, model).spent).toMatchObject({
          inputTokens: billed.input,
          outputTokens: billed.output,
          cacheWriteTokens: billed.cacheWrite,
          cacheReadTokens: billed.cacheRead,
          calls: billed.calls
        })
      }
      // The drifted haiku reply is the only waste; the 529 was not billed, and so is not in the ledger.
      expect(report.totals.wasted).toMatchObject({ calls: 1, inputTokens: 33_333, outputTokens: 777 })
      expect(report.totals.wasted.usd).toBeCloseTo((33_333 * 1 + 777 * 5) / 1e6, 12)
      // The shares: of all input tokens spent, the opus review took 250_001 / (123_457 + 33_333 * 2 + 250_001).
      expect(row(report, "claude-opus-4-6").share.inputTokens).toBeCloseTo(250_001 / (123_457 + 66_666 + 250_001), 12)
    }).pipe(Effect.provide(fresh)))

  it.effect("an unknown model is listed as unpriced: tokens counted, no dollars; a Pricing override prices it", () =>
    Effect.gen(function*() {
      yield* script({ text: "ok", usage: { input_tokens: 1000, output_tokens: 100 } })
      const step = Anthropic.messageStep({ name: "ask", model: "claude-mystery-1", maxTokens: 100, input: Schema.String, prompt: (s) => s })
      const pipeline = Pipeline.make({ name: "mystery", version: 1, input: Schema.String, output: Schema.String, run: (s) => step(s) })
      yield* Engine.run(pipeline, "q")
      const report = yield* CostLedger.report({ by: "model" })
      expect(report.rows).toEqual([{
        group: "claude-mystery-1",
        spent: { usd: 0, inputTokens: 1000, outputTokens: 100, cacheWriteTokens: 0, cacheReadTokens: 0, calls: 1 },
        saved: CostLedger.zero,
        held: CostLedger.zero,
        wasted: CostLedger.zero,
        unpriced: ["claude-mystery-1"],
        share: { usd: 0, inputTokens: 1, outputTokens: 1 }
      }])
      expect(report.totals.unpriced).toEqual(["claude-mystery-1"])
      const priced = yield* CostLedger.report({ by: "model" }).pipe(
        Effect.provide(Pricing.layer({ models: { "claude-mystery-1": { input: 2, output: 8, cacheWrite: 2.5, cacheRead: 0.2 } } }))
      )
      expect(priced.totals.unpriced).toEqual([])
      expect(priced.totals.spent.usd).toBeCloseTo((1000 * 2 + 100 * 8) / 1e6, 12)
    }).pipe(Effect.provide(fresh)))
})

describe("CostLedger: projection rules", () => {
  /** A step that reports the usage of a call it made (any provider), like an LLM step would. */
  const paid = (name: string, inputTokens: number, options: { compensate?: boolean; keep?: boolean } = {}) =>
    Step.make({
      name,
      input: Schema.String,
      output: Schema.String,
      ...(options.keep === true ? { keepOnRollback: true } : {}),
      ...(options.compensate === true ? { compensate: () => Effect.void } : {}),
      run: (s, ctx) =>
        Effect.as(ctx.reportUsage(new Usage.Usage({ model: "claude-sonnet-4-6", inputTokens, outputTokens: 10 })), `${name}(${s})`)
    })

  const failing = Step.make({
    name: "fails",
    input: Schema.String,
    output: Schema.String,
    run: () => Effect.fail(Failure.deterministic("no such table: reports", { rule: "sqlite-code" }))
  })

  it.effect("a completion undone by a compensation is wasted; one kept on rollback is not", () =>
    Effect.gen(function*() {
      const undone = paid("draft", 1000, { compensate: true })
      const kept = paid("summary", 2000, { compensate: true, keep: true })
      const pipeline = Pipeline.make({
        name: "undo",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        run: (s) => Effect.gen(function*() {
          yield* undone(s)
          yield* kept(s)
          return yield* failing(s)
        })
      })
      yield* Effect.flip(Engine.run(pipeline, "x"))
      expect((yield* Engine.runs())[0]!.status).toBe("rolled_back")
      const report = yield* CostLedger.report({ by: "step" })
      expect(row(report, "undo/draft").wasted).toMatchObject({ calls: 1, inputTokens: 1000 })
      expect(row(report, "undo/summary").wasted).toEqual(CostLedger.zero)
      expect(report.totals.spent.inputTokens).toBe(3000)
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("a chain of runs (correlationId, parentRunId) is summed as one; since keeps only what happened after", () =>
    Effect.gen(function*() {
      const step = paid("turn", 500)
      const pipeline = Pipeline.make({ name: "bot", version: 1, input: Schema.String, output: Schema.String, run: (s) => step(s) })
      yield* Engine.run(pipeline, "unrelated")
      yield* TestClock.adjust("1 hour")
      yield* Engine.run(pipeline, "root", { correlationId: "thread-9" })
      const root = (yield* Engine.runs()).find((r) => r.correlationId === "thread-9")
      yield* Engine.run(pipeline, "child", { parentRunId: root!.runId })
      const child = (yield* Engine.runs()).find((r) => r.parentRunId === root!.runId)!
      yield* Engine.run(pipeline, "grandchild", { parentRunId: child.runId })

      const chain = yield* CostLedger.report({ by: "run", correlationId: "thread-9" })
      expect(chain.runs).toBe(3)
      expect(chain.totals.spent).toMatchObject({ calls: 3, inputTokens: 1500 })
      const byChain = yield* CostLedger.report({ by: "correlation" })
      expect(byChain.rows.map((r) => [r.group, r.spent.calls])).toEqual([
        ["thread-9", 3],
        [expect.stringMatching(/^run_/), 1]
      ])
      const recent = yield* CostLedger.report({ by: "pipeline", since: 30 * 60 * 1000 })
      expect(recent.totals.spent.calls).toBe(3)
    }).pipe(Effect.provide(EngineMemory)))
})
