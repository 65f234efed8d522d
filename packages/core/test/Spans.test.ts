/**
 * The spans a run makes, exported through `@effect/opentelemetry` to an in-memory exporter: run › step ›
 * attempt (› the Claude call, with the OpenTelemetry GenAI attributes), compensations under the run, served
 * steps marked with nothing under them, and failed attempts with their classification.
 */
import { Resource, Tracer } from "@effect/opentelemetry"
import { describe, expect, layer } from "@effect/vitest"
import { Anthropic, Engine, Failure, Pipeline, RetryPolicy, Step } from "@ledgerflow/core"
import { AnthropicStandIn } from "@ledgerflow/core/testing"
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Exit, Layer, Schema } from "effect"
import { fresh, script, withTime } from "./fixtures/claude.js"

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
const Tracing = Tracer.layer.pipe(
  Layer.provide(Layer.succeed(Tracer.OtelTracerProvider, provider)),
  Layer.provide(Resource.layer({ serviceName: "ledgerflow-test" }))
)

const fast = RetryPolicy.exponential({ base: "100 millis", maxDelay: "1 second", maxAttempts: 2, maxElapsed: "1 minute", jitter: 0 })

/** The seed, short: fetch (undone into `undone`, if given) → a Claude summary → webhook (failing as told). */
const seed = (webhookFaults: Array<Failure.Failure>, undone?: Array<string>) => {
  const fetch = Step.make({
    name: "fetch",
    input: Schema.String,
    output: Schema.Number,
    run: (account) => Effect.succeed(account.length * 100),
    ...(undone !== undefined ? { compensate: (rows: number) => Effect.sync(() => void undone.push(`fetch ${rows}`)) } : {})
  })
  const summarize = Anthropic.messageStep({
    name: "summarize",
    model: "claude-sonnet-4-6",
    maxTokens: 512,
    input: Schema.Number,
    prompt: (rows) => `Summarise ${rows} rows`
  })
  const webhook = Step.make({
    name: "webhook",
    input: Schema.String,
    output: Schema.Literal("sent"),
    retry: fast,
    run: () =>
      Effect.suspend(() => {
        const fault = webhookFaults.shift()
        return fault === undefined ? Effect.succeed("sent" as const) : Effect.fail(fault)
      })
  })
  return Pipeline.make({
    name: "ad-report",
    version: 1,
    input: Schema.String,
    output: Schema.String,
    run: (account) =>
      Effect.gen(function*() {
        const summary = yield* summarize(yield* fetch(account))
        yield* webhook(summary)
        return summary
      })
  })
}

const unavailable = () => Failure.transient("HTTP 503 from the webhook", { rule: "http-status" })
const rejected = () => Failure.deterministic("HTTP 422 from the webhook", { rule: "http-status" })

/** Each span with its parent's name, in the order they ended. */
const tree = () => {
  const spans = exporter.getFinishedSpans()
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
  const parentOf = (s: ReadableSpan) => {
    const id = s.parentSpanContext?.spanId
    return id === undefined ? undefined : byId.get(id)
  }
  return { spans, parentOf, named: (name: string) => spans.filter((s) => s.name === name) }
}

layer(AnthropicStandIn.layer())("spans", (it) => {
  describe("run › step › attempt, through @effect/opentelemetry", () => {
    it.effect("the seed: failed attempts carry their classification; the second start serves the summary, marked, and pays nothing", () =>
      Effect.gen(function*() {
        exporter.reset()
        yield* script({ text: "A summary.", usage: { input_tokens: 800, output_tokens: 40, cache_read_input_tokens: 12 } })
        const pipeline = seed([unavailable(), unavailable()])
        const first = yield* Effect.exit(withTime(Engine.run(pipeline, "acme", { key: "s1" })))
        expect(Exit.isFailure(first)).toBe(true)
        const firstRun = tree()
        const [run1] = firstRun.named("ledgerflow.run")
        expect(run1?.attributes).toMatchObject({
          "ledgerflow.pipeline": "ad-report",
          "ledgerflow.pipeline.version": "1",
          "ledgerflow.key": "s1",
          "ledgerflow.mode": "execute"
        })
        const runId = run1?.attributes["ledgerflow.run_id"]
        expect(runId).toMatch(/^run_/)
        // Steps are children of the run, attempts of their step, the Claude call of its attempt.
        const steps = firstRun.named("ledgerflow.step")
        expect(steps.map((s) => [s.attributes["ledgerflow.step_id"], s.attributes["ledgerflow.served"]])).toEqual([
          ["fetch#0", false],
          ["summarize#0", false],
          ["webhook#0", false]
        ])
        for (const step of steps) expect(firstRun.parentOf(step)).toBe(run1)
        const chat = firstRun.named("chat claude-sonnet-4-6")
        expect(chat).toHaveLength(1)
        expect(chat[0]!.attributes).toMatchObject({
          "gen_ai.provider.name": "anthropic",
          "gen_ai.operation.name": "chat",
          "gen_ai.request.model": "claude-sonnet-4-6",
          "gen_ai.request.max_tokens": 512,
          "gen_ai.response.model": "claude-sonnet-4-6",
          "gen_ai.usage.input_tokens": 800,
          "gen_ai.usage.output_tokens": 40,
          "gen_ai.usage.cache_read.input_tokens": 12,
          "gen_ai.usage.cache_creation.input_tokens": 0
        })
        const summaryAttempt = firstRun.parentOf(chat[0]!)
        expect(summaryAttempt?.name).toBe("ledgerflow.attempt")
        expect(summaryAttempt?.attributes).toMatchObject({ "ledgerflow.step_id": "summarize#0", "ledgerflow.attempt": 1, "ledgerflow.tokens": "spent" })
        expect(summaryAttempt?.attributes["ledgerflow.cost.usd"]).toBeGreaterThan(0)
        expect(firstRun.parentOf(summaryAttempt!)?.attributes["ledgerflow.step_id"]).toBe("summarize#0")
        // The webhook's two attempts: transient by rule http-status, the first retried after 100 ms, the last given up.
        const webhookAttempts = firstRun.named("ledgerflow.attempt").filter((s) => s.attributes["ledgerflow.step_id"] === "webhook#0")
        expect(webhookAttempts.map((s) => ({
          attempt: s.attributes["ledgerflow.attempt"],
          class: s.attributes["ledgerflow.failure.class"],
          rule: s.attributes["ledgerflow.failure.rule"],
          delay: s.attributes["ledgerflow.retry.delay_ms"],
          gaveUp: typeof s.attributes["ledgerflow.retry.gave_up"]
        }))).toEqual([
          { attempt: 1, class: "transient", rule: "http-status", delay: 100, gaveUp: "undefined" },
          { attempt: 2, class: "transient", rule: "http-status", delay: undefined, gaveUp: "string" }
        ])
        for (const attempt of webhookAttempts) expect(firstRun.parentOf(attempt)?.attributes["ledgerflow.step_id"]).toBe("webhook#0")

        // The second start by the same key takes the run over: fetch and the summary are served, nothing paid.
        exporter.reset()
        const out = yield* withTime(Engine.run(pipeline, "acme", { key: "s1" }))
        expect(out).toBe("A summary.")
        const second = tree()
        const [run2] = second.named("ledgerflow.run")
        expect(run2?.attributes["ledgerflow.run_id"]).toBe(runId)
        expect(second.named("ledgerflow.step").map((s) => [s.attributes["ledgerflow.step_id"], s.attributes["ledgerflow.served"]]))
          .toEqual([["fetch#0", true], ["summarize#0", true], ["webhook#0", false]])
        expect(second.named("chat claude-sonnet-4-6")).toHaveLength(0)
        const served = second.named("ledgerflow.step").filter((s) => s.attributes["ledgerflow.served"] === true)
        for (const step of served) expect(second.spans.filter((s) => second.parentOf(s) === step)).toEqual([])
      }).pipe(Effect.provide(Layer.merge(fresh, Tracing))))

    it.effect("a failed run's compensations are spans under the run, after its steps", () =>
      Effect.gen(function*() {
        exporter.reset()
        yield* script({ text: "A summary.", usage: { input_tokens: 100, output_tokens: 10 } })
        const undone: Array<string> = []
        const out = yield* Effect.exit(withTime(Engine.run(seed([rejected()], undone), "acme", { key: "s2" })))
        expect(Exit.isFailure(out)).toBe(true)
        expect(undone).toEqual(["fetch 400"])
        const { named, parentOf } = tree()
        const [run] = named("ledgerflow.run")
        const [compensation] = named("ledgerflow.compensation")
        expect(compensation?.attributes).toMatchObject({
          "ledgerflow.step_id": "fetch#0",
          "ledgerflow.compensation.outcome": "compensated"
        })
        expect(parentOf(compensation!)).toBe(run)
        const [webhookAttempt] = named("ledgerflow.attempt").filter((s) => s.attributes["ledgerflow.step_id"] === "webhook#0")
        expect(webhookAttempt?.attributes).toMatchObject({ "ledgerflow.failure.class": "deterministic", "ledgerflow.failure.rule": "http-status" })
      }).pipe(Effect.provide(Layer.merge(fresh, Tracing))))
  })
})
