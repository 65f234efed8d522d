import { assert, describe, expect, it, layer } from "@effect/vitest"
import { Anthropic, CostLedger, Engine, EventStore, Failure, Journal, LoopGuard, Pipeline, Pricing, Step, Usage } from "@ledgerflow/core"
import { AnthropicStandIn } from "@ledgerflow/core/testing"
import { Effect, Layer, Schema } from "effect"
import { BudgetTracker } from "../src/internal/budget.js"
import { fresh, meter, promptOf, script } from "./fixtures/claude.js"

const summarize = (options: { maxTokens?: number; model?: string } = {}) =>
  Anthropic.messageStep({
    name: "summarize",
    model: options.model ?? "claude-sonnet-4-6",
    maxTokens: options.maxTokens ?? 1024,
    input: Schema.String,
    prompt: (text) => text
  })

/** A Claude step whose prompt is the history, with a context ceiling of 4000 input tokens. */
const contextAgent = (name: string, options: { readonly failOverCeiling?: boolean } = {}) =>
  Anthropic.messageStep({
    name,
    model: "claude-sonnet-4-6",
    maxTokens: 200,
    input: Schema.String,
    prompt: (history) => history,
    contextCeiling: 4000,
    ...options
  })

/** A text-in, text-out pipeline with a run budget (its `run` given by the test). */
const budgeted = (name: string, budget: Pipeline.Budget) =>
  ({ name, version: 1, input: Schema.String, output: Schema.String, budget }) as const

describe("LoopGuard", () => {
  it.effect("three bots answering each other in one thread are stopped at turn 11 of 10, naming who drove the chain", () =>
    Effect.gen(function*() {
      const bots = ["triage-bot", "billing-bot", "reply-bot"]
      const turns: Array<LoopGuard.Turn> = []
      for (let i = 0; i < 10; i++) {
        turns.push(yield* LoopGuard.check({ key: "thread-42", actor: bots[i % 3]!, limit: 10 }))
      }
      expect(turns.map((t) => t.count)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      expect(turns[9]).toMatchObject({ remaining: 0 })
      // The guard fails with LoopLimitExceeded; the log records it as the Failure it carries.
      const failure = Failure.classify(yield* Effect.flip(LoopGuard.check({ key: "thread-42", actor: "billing-bot", limit: 10 })))
      assert(Failure.isDeterministic(failure))
      expect(failure.rule).toBe("loop-limit")
      expect(failure.cause).toMatchObject({ name: "LoopLimitExceeded", code: "thread-42" })
      expect(failure.reason).toContain("LoopLimitExceeded: the chain \"thread-42\" reached turn 11, past its limit of 10")
      expect(failure.reason).toContain("driven by billing-bot (4), reply-bot (3), triage-bot (3)")
      // Another thread has its own counter.
      expect(yield* LoopGuard.check({ key: "thread-43", actor: "triage-bot", limit: 10 })).toMatchObject({ count: 1 })
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it("bad limits are refused when the guard is defined", () => {
    expect(() => LoopGuard.step({ limit: 0 })).toThrow(/limit must be an integer >= 1/)
  })
})

layer(AnthropicStandIn.layer())("guards with Claude steps", (it) => {
  it.effect("as a step in a pipeline the loop guard stops the 11th reply before Claude is called; replay does not count again", () =>
    Effect.gen(function*() {
      const guard = LoopGuard.step({ limit: 10 })
      const reply = Anthropic.messageStep({
        name: "reply",
        model: "claude-haiku-4-5",
        maxTokens: 200,
        input: Schema.String,
        prompt: (text) => `Answer in the thread: ${text}`
      })
      const onMessage = Pipeline.make({
        name: "on-message",
        version: 1,
        input: Schema.Struct({ thread: Schema.String, from: Schema.String, text: Schema.String }),
        output: Schema.String,
        run: (message) =>
          Effect.gen(function*() {
            yield* guard({ key: message.thread, actor: message.from })
            return yield* reply(message.text)
          })
      })
      const bots = ["triage-bot", "billing-bot", "reply-bot"]
      for (let i = 0; i < 10; i++) {
        yield* Engine.run(onMessage, { thread: "t-1", from: bots[i % 3]!, text: `message ${i}` })
      }
      const [last] = yield* Engine.runs()
      expect((yield* Engine.replay(onMessage, last!.runId)).outcome).toBe("identical")
      const failure = yield* Effect.flip(Engine.run(onMessage, { thread: "t-1", from: "triage-bot", text: "message 10" }))
      expect(failure).toMatchObject({ _tag: "Deterministic", rule: "loop-limit" })
      expect((failure as Failure.Deterministic).reason).toContain("turn 11, past its limit of 10")
      expect((yield* meter).billedCalls).toBe(10)
    }).pipe(Effect.provide(fresh)))

  it.effect("a run budget in dollars stops a summary before the call: the meter shows no call", () =>
    Effect.gen(function*() {
      const step = summarize()
      const pipeline = Pipeline.make({ ...budgeted("budgeted", { usd: 0.01 }), run: (text: string) => step(text) })
      const failure = yield* Effect.flip(Engine.run(pipeline, promptOf(8000), { key: "b1" }))
      assert(Failure.isDeterministic(failure))
      expect(failure.rule).toBe("budget")
      expect(failure.cause).toMatchObject({ name: "BudgetExceeded", code: "usd" })
      // ~8000 input tokens × $3/M + 1024 output × $15/M = $0.0394 > $0.01.
      expect(failure.reason).toMatch(
        /^BudgetExceeded: step summarize#0 of run run_\w+ would pass the run's budget of \$0.01: \$0.0000 spent so far \+ ~\$0.0394 estimated for this call \(claude-sonnet-4-6, ~8000 input \+ up to 1024 output tokens\); it was not called$/
      )
      expect((yield* meter).calls).toBe(0)
      const [run] = yield* Engine.runs({ key: "b1" })
      expect(run).toMatchObject({ status: "failed", failureClass: "deterministic" })
      const events = yield* Engine.events(run!.runId)
      expect(events.map((e) => e._tag)).toEqual(["RunStarted", "LeaseTaken", "RunFailed"])
      const failed = events[2]
      assert(failed?._tag === "RunFailed")
      expect(failed.stepId).toBe("summarize#0")
    }).pipe(Effect.provide(fresh)))

  it.effect("pipeline code catches BudgetExceeded from the step call it refused and goes on without paying for it", () =>
    Effect.gen(function*() {
      const step = summarize()
      const pipeline = Pipeline.make({
        ...budgeted("budget-fallback", { usd: 0.01 }),
        run: (text: string) =>
          step(text).pipe(Effect.catchTag("BudgetExceeded", (e) => Effect.succeed(`skipped ${e.stepId}: ${e.measure} over ${e.limit}`)))
      })
      expect(yield* Engine.run(pipeline, promptOf(8000), { key: "b-fallback" })).toBe("skipped summarize#0: usd over 0.01")
      expect((yield* meter).calls).toBe(0)
      const [run] = yield* Engine.runs({ key: "b-fallback" })
      expect(run).toMatchObject({ status: "completed" })
    }).pipe(Effect.provide(fresh)))

  it.effect("a token budget counts what the run spent: the second summary is refused, naming spent, limit and step", () =>
    Effect.gen(function*() {
      const step = summarize({ maxTokens: 256 })
      const pipeline = Pipeline.make({
        name: "two-summaries",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        budget: { inputTokens: 50_000 },
        run: (text) => Effect.zipWith(step(`first: ${text}`), step(`second: ${text}`), (a, b) => `${a.length}+${b.length}`)
      })
      // The pipeline's budget would allow both; this run's tighter budget allows one.
      const failure = yield* Effect.flip(Engine.run(pipeline, promptOf(8000), { budget: { inputTokens: 12_000 } }))
      assert(Failure.isDeterministic(failure))
      expect(failure.reason).toContain("step summarize#1 of run")
      expect(failure.reason).toContain("would pass the run's budget of 12000 input tokens: 8002 spent so far + ~8002 estimated")
      const m = yield* meter
      expect(m.billedCalls).toBe(1)
      // A resume with the budget raised finishes it: the first summary is served, the second is paid.
      const [run] = yield* Engine.runs()
      yield* Engine.resume(pipeline, run!.runId, { budget: { inputTokens: 20_000 } })
      expect((yield* meter).billedCalls).toBe(2)
    }).pipe(Effect.provide(fresh)))

  it.effect("a dollar budget cannot be checked against an unpriced model: refused before the call, saying how to price it", () =>
    Effect.gen(function*() {
      const step = summarize({ model: "claude-mystery-1" })
      const pipeline = Pipeline.make({ name: "unpriced", version: 1, input: Schema.String, output: Schema.String, budget: { usd: 5 }, run: (t) => step(t) })
      const failure = yield* Effect.flip(Engine.run(pipeline, "hello"))
      expect(failure).toMatchObject({ _tag: "Deterministic", rule: "budget" })
      expect((failure as Failure.Deterministic).reason).toContain("uses model claude-mystery-1, which has no price")
      expect((failure as Failure.Deterministic).reason).toContain("Pricing.layer")
      expect((yield* meter).calls).toBe(0)
      // With a price for it, the budget holds and the call is made.
      yield* Engine.run(pipeline, "hello again").pipe(
        Effect.provide(Pricing.layer({ models: { "claude-mystery-1": { input: 1, output: 1, cacheWrite: 1, cacheRead: 1 } } }))
      )
      expect((yield* meter).billedCalls).toBe(1)
    }).pipe(Effect.provide(fresh)))

  it.effect("a context over the step's ceiling is a finding journaled with the completion, and reported per step", () =>
    Effect.gen(function*() {
      const agent = contextAgent("agent-turn")
      const pipeline = Pipeline.make({ name: "agent", version: 1, input: Schema.String, output: Schema.String, run: (h) => agent(h) })
      yield* Engine.run(pipeline, promptOf(18_000))
      const [run] = yield* Engine.runs()
      const events = yield* Engine.events(run!.runId)
      const i = events.findIndex((e) => e._tag === "StepCompleted")
      const finding = events[i + 1]
      assert(finding?._tag === "StepFinding")
      expect(finding).toMatchObject({ stepId: "agent-turn#0", kind: "ContextOverCeiling", limit: 4000, actual: 18_000 })
      expect(finding.message).toBe("step agent-turn#0 sent 18000 input tokens, 14000 (350%) over its context ceiling of 4000")
      const report = yield* CostLedger.report({ by: "step" })
      expect(report.findings).toEqual([{
        pipeline: "agent",
        step: "agent-turn",
        kind: "ContextOverCeiling",
        count: 1,
        worst: { message: finding.message, limit: 4000, actual: 18_000 },
        runs: [run!.runId]
      }])
    }).pipe(Effect.provide(fresh)))

  it.effect("with failOverCeiling the step fails Deterministic; the finding and the failed attempt are one append; the tokens are wasted", () =>
    Effect.gen(function*() {
      const agent = contextAgent("agent-turn", { failOverCeiling: true })
      const pipeline = Pipeline.make({ name: "strict-agent", version: 1, input: Schema.String, output: Schema.String, run: (h) => agent(h) })
      const appends: Array<ReadonlyArray<string>> = []
      const failure = yield* Effect.flip(Engine.run(pipeline, promptOf(5000))).pipe(
        Effect.provide(Engine.layer()),
        Effect.provide(Layer.effect(
          EventStore.EventStore,
          Effect.map(EventStore.EventStore, (store) => ({
            ...store,
            append: (request: Parameters<typeof store.append>[0]) => {
              appends.push(request.events.map((e) => e.type))
              return store.append(request)
            }
          }))
        ))
      )
      expect(failure).toMatchObject({ _tag: "Deterministic", rule: "context-ceiling" })
      expect(appends[0]).toEqual(["StepAttemptFailed", "StepFinding"])
      const report = yield* CostLedger.report({ by: "step" })
      expect(report.totals.wasted).toMatchObject({ calls: 1, inputTokens: 5000 })
      expect(report.findings[0]).toMatchObject({ kind: "ContextOverCeiling", worst: { limit: 4000, actual: 5000 } })
    }).pipe(Effect.provide(fresh)))
})

layer(AnthropicStandIn.layer())("the guards' errors are caught by their tag where they are raised", (it) => {
  it.effect("LoopLimitExceeded: a step that checks the guard catches the tag and answers instead; the run completes", () =>
    Effect.gen(function*() {
      const reply = Step.make({
        name: "reply",
        input: Schema.Struct({ thread: Schema.String, from: Schema.String }),
        output: Schema.String,
        run: ({ from, thread }) =>
          LoopGuard.check({ key: thread, actor: from, limit: 2 }).pipe(
            Effect.as(`${from} answers`),
            Effect.catchTag("LoopLimitExceeded", (e) =>
              Effect.succeed(`${from} stays silent: turn ${e.actual} of ${e.limit} on ${e.key}, driven by ${e.drivers}`))
          )
      })
      const onMessage = Pipeline.make({
        name: "on-message",
        version: 1,
        input: Schema.Struct({ thread: Schema.String, from: Schema.String }),
        output: Schema.String,
        run: (message) => reply(message)
      })
      expect(yield* Engine.run(onMessage, { thread: "t-9", from: "triage-bot" })).toBe("triage-bot answers")
      expect(yield* Engine.run(onMessage, { thread: "t-9", from: "billing-bot" })).toBe("billing-bot answers")
      expect(yield* Engine.run(onMessage, { thread: "t-9", from: "reply-bot" })).toBe(
        "reply-bot stays silent: turn 3 of 2 on t-9, driven by billing-bot (1), reply-bot (1), triage-bot (1)"
      )
      // Outside a pipeline the tag is there too, with what to act on.
      const refused = yield* Effect.flip(LoopGuard.check({ key: "t-9", actor: "triage-bot", limit: 2 }))
      assert(refused._tag === "LoopLimitExceeded")
      expect(refused).toMatchObject({ key: "t-9", limit: 2, actual: 4, actors: ["triage-bot", "billing-bot", "reply-bot", "triage-bot"] })
      expect(refused.hint).toContain("raise the guard's limit (2)")
    }).pipe(Effect.provide(fresh)))

  it.effect("ContextOverCeiling: a step of our own catches it from the Claude step's body and retries with the recent context only", () =>
    Effect.gen(function*() {
      const agent = contextAgent("agent-call", { failOverCeiling: true })
      const turn = Step.make({
        name: "agent-turn",
        input: Schema.String,
        output: Schema.String,
        run: (history, context) =>
          agent.run(history, context).pipe(
            Effect.catchTag("ContextOverCeiling", (e) => {
              expect(e).toMatchObject({ stepId: "agent-turn#0", limit: 4000, actual: 18_000 })
              expect(e.message).toBe("step agent-turn#0 sent 18000 input tokens, 14000 (350%) over its context ceiling of 4000")
              return agent.run(history.slice(-e.limit * 2), context)
            })
          )
      })
      const pipeline = Pipeline.make({ name: "trimming-agent", version: 1, input: Schema.String, output: Schema.String, run: (h) => turn(h) })
      yield* Engine.run(pipeline, promptOf(18_000))
      // Two calls, both paid and reported: the one over the ceiling and the trimmed one.
      expect((yield* meter).billedCalls).toBe(2)
      const [run] = yield* Engine.runs()
      expect(run).toMatchObject({ status: "completed" })
    }).pipe(Effect.provide(fresh)))

  it.effect("SchemaDrift: a step of our own catches it from the Claude step's body and keeps the text instead", () =>
    Effect.gen(function*() {
      yield* script({ toolUse: { name: "extract", input: { title: "Q3" } }, usage: { input_tokens: 900, output_tokens: 40 } })
      const extract = Anthropic.messageStep({
        name: "extract",
        model: "claude-sonnet-4-6",
        maxTokens: 512,
        input: Schema.String,
        output: Schema.Struct({ title: Schema.String, total: Schema.Number }),
        prompt: (text) => `Extract: ${text}`
      })
      const lenient = Step.make({
        name: "lenient-extract",
        input: Schema.String,
        output: Schema.Struct({ title: Schema.String, total: Schema.NullOr(Schema.Number) }),
        run: (text, context) =>
          extract.run(text, context).pipe(
            Effect.catchTag("SchemaDrift", (e) => {
              expect(e).toMatchObject({ stepName: "extract", fingerprint: "{title:string}" })
              return Effect.succeed({ title: "Q3", total: null })
            })
          )
      })
      const pipeline = Pipeline.make({ name: "lenient", version: 1, input: Schema.String, output: Schema.Struct({ title: Schema.String, total: Schema.NullOr(Schema.Number) }), run: (t) => lenient(t) })
      expect(yield* Engine.run(pipeline, "q3")).toEqual({ title: "Q3", total: null })
    }).pipe(Effect.provide(fresh)))

  it("BudgetExceeded: the budget check returns the tagged error, with the limit, what was spent and the estimate, journaled as today's Failure", () => {
    const step = summarize()
    const tracker = new BudgetTracker("run_1", { usd: 0.01 }, Pricing.defaultTable, Journal.empty)
    const refused = tracker.reserve(step, promptOf(8000), "summarize#0")
    assert(refused instanceof Pipeline.BudgetExceeded)
    expect(refused).toMatchObject({ runId: "run_1", stepId: "summarize#0", measure: "usd", limit: 0.01, spent: 0 })
    expect(refused.estimated).toBeCloseTo(0.0394, 4)
    const caught = Effect.runSync(Effect.fail(refused).pipe(
      Effect.catchTag("BudgetExceeded", (e) => Effect.succeed(`${e.measure} over ${e.limit}`))
    ))
    expect(caught).toBe("usd over 0.01")
    const failure = Failure.classify(refused)
    expect(failure).toMatchObject({ _tag: "Deterministic", rule: "budget", cause: { name: "BudgetExceeded", code: "usd" } })
    expect(failure.reason).toBe(`BudgetExceeded: ${refused.message}`)
    // Within budget: a reservation, released after the attempt.
    const roomy = new BudgetTracker("run_2", { usd: 1 }, Pricing.defaultTable, Journal.empty)
    expect(roomy.reserve(step, promptOf(8000), "summarize#0")).toMatchObject({ inputTokens: 8000 })
  })
})

describe("Pricing", () => {
  it("prices usage per million tokens; dated model ids use their family's entry; unknown models are unpriced", () => {
    const cost = Pricing.cost(Pricing.defaultTable, {
      model: "claude-sonnet-4-5-20250929",
      inputTokens: 1_000_000,
      outputTokens: 100_000,
      cacheWriteTokens: 10_000,
      cacheReadTokens: 2_000_000
    })
    assert(cost._tag === "Priced")
    expect(cost.usd).toBeCloseTo(3 + 1.5 + 0.0375 + 0.6, 12)
    expect(Pricing.cost(Pricing.defaultTable, { model: "claude-5-whatever", inputTokens: 1, outputTokens: 1, cacheWriteTokens: 0, cacheReadTokens: 0 }))
      .toEqual({ _tag: "Unpriced", model: "claude-5-whatever" })
    expect(Pricing.lookup(Pricing.defaultTable, "claude-3-5-haiku-20241022")).toEqual({ input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 })
    expect(Pricing.lookup(Pricing.defaultTable, "claude-3-7-sonnet-latest")?.input).toBe(3)
    expect(Pricing.make({ models: { "claude-haiku-4-5": { input: 9, output: 9, cacheWrite: 9, cacheRead: 9 } } }).models["claude-haiku-4-5"]?.input)
      .toBe(9)
    expect(Object.keys(Pricing.make({ replace: true, models: {} }).models)).toEqual([])
    expect(Pricing.decodeTable({ asOf: "2026-11-25", models: { m: { input: -1, output: 0, cacheWrite: 0, cacheRead: 0 } } })._tag).toBe("Left")
  })
})

// A step with an estimate but no paid call, to show budgets are generic (any step can declare one).
describe("budgets on plain steps", () => {
  it.effect("a step that declares an estimate is checked against the budget; a step without one is not", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const paid = (inputTokens: number) =>
        Step.make({
          name: "paid",
          input: Schema.String,
          output: Schema.String,
          estimate: () => ({ model: "claude-haiku-4-5", inputTokens, outputTokens: 0 }),
          run: (s) => Effect.sync(() => (ran.push("paid"), s))
        })
      // Spends 300 input tokens (reported, not estimated) each time it runs.
      const spend = Step.make({
        name: "spend",
        input: Schema.String,
        output: Schema.String,
        run: (s, ctx) =>
          Effect.zipRight(
            ctx.reportUsage(new Usage.Usage({ model: "claude-haiku-4-5", inputTokens: 300, outputTokens: 0 })),
            Effect.sync(() => (ran.push("spend"), s))
          )
      })
      const pipeline = (estimate: number) =>
        Pipeline.make({
          name: `generic-${estimate}`,
          version: 1,
          input: Schema.String,
          output: Schema.String,
          budget: { inputTokens: 500 },
          // spend three times: the third call starts with 600 tokens spent, past the budget, and runs all
          // the same, as it declares no estimate; then the paid step, which does, is refused.
          run: (s) => Effect.zipRight(Effect.forEach([s, `${s}!`, `${s}!!`], (i) => spend(i)), paid(estimate)(s))
        })
      const failure = yield* Effect.flip(Engine.run(pipeline(100), "x"))
      expect(failure).toMatchObject({ _tag: "Deterministic", rule: "budget" })
      expect(ran).toEqual(["spend", "spend", "spend"])
      // The check is the estimate's: within the budget, the paid step runs.
      ran.length = 0
      const fits = Pipeline.make({
        name: "generic-fits",
        version: 1,
        input: Schema.String,
        output: Schema.String,
        budget: { inputTokens: 500 },
        run: (s) => Effect.zipRight(spend(s), paid(200)(s))
      })
      expect(yield* Engine.run(fits, "y")).toBe("y")
      expect(ran).toEqual(["spend", "paid"])
    }).pipe(Effect.provide(Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory)))))
})
