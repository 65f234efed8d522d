import { assert, describe, expect, it, layer } from "@effect/vitest"
import { Anthropic, CostLedger, Engine, Event, Failure, Journal, Pipeline, RetryPolicy } from "@ledgerflow/core"
import { AnthropicStandIn } from "@ledgerflow/core/testing"
import { ConfigProvider, Effect, Exit, Fiber, Layer, Schema, TestServices } from "effect"
import { fresh, meter, promptOf, script, withTime } from "./fixtures/claude.js"

const Report = Schema.Struct({ title: Schema.String, total: Schema.Number, tags: Schema.Array(Schema.String) })

const fast = RetryPolicy.exponential({ base: "1 second", maxDelay: "10 seconds", maxAttempts: 4, maxElapsed: "5 minutes", jitter: 0 })

/** A one-step pipeline around a message step. */
const single = <O>(step: Anthropic.MessageStep<string, O>, name = "single") =>
  Pipeline.make({
    name,
    version: 1,
    input: Schema.String,
    output: Schema.Unknown,
    run: (text: string) => step(text)
  })

/** The extraction step of these tests: a Report from text, by tool use (sonnet, 512 tokens out). */
const extractReport = (options: Pick<Anthropic.MessageStepOptions<string, unknown>, "driftCap" | "retry" | "toolChoice"> = {}) =>
  Anthropic.messageStep({
    name: "extract",
    model: "claude-sonnet-4-6",
    maxTokens: 512,
    input: Schema.String,
    output: Report,
    prompt: (text) => `Extract: ${text}`,
    ...options
  })

/**
 * Summarise, then extract a Report from the summary: drifts capped at 1, transient failures at 2 attempts
 * with a 10 s backoff. The summary is the paid work a resume must serve rather than buy again.
 */
const summarizeThenExtract = () => {
  const summarize = Anthropic.messageStep({
    name: "summarize",
    model: "claude-haiku-4-5",
    maxTokens: 256,
    input: Schema.String,
    prompt: (text) => `Summarise: ${text}`
  })
  const extract = extractReport({
    driftCap: 1,
    retry: RetryPolicy.exponential({ base: "10 seconds", maxDelay: "10 seconds", maxAttempts: 2, maxElapsed: "5 minutes", jitter: 0 })
  })
  return Pipeline.make({
    name: "summarize-extract",
    version: 1,
    input: Schema.String,
    output: Schema.Unknown,
    run: (text: string) => Effect.flatMap(summarize(text), extract)
  })
}

/**
 * Before the crash: the summary, a drifted extraction (drift 1 of 1), a 529 (attempt 1 of 2, retry in 10 s).
 * Once the journal shows that 529 with its delay, the worker is stopped while it waits out the backoff (its
 * lease released, as a stopped process's is; the TestClock never moved): the run is left `running`, for a
 * second start by key to take over.
 */
const crashedInBackoff = (pipeline: ReturnType<typeof summarizeThenExtract>, key: string) =>
  Effect.gen(function*() {
    yield* script(
      { text: "Q3: ads up 12%.", usage: { input_tokens: 400, output_tokens: 20 } },
      { toolUse: { name: "extract", input: { title: "Q3", tags: ["ads"] } }, usage: { input_tokens: 300, output_tokens: 30 } },
      { fault: "status", status: 529 }
    )
    const worker = yield* Effect.fork(Engine.run(pipeline, "the Q3 report", { key }))
    const failedSoFar = Effect.flatMap(Engine.runs({ key }), ([run]) =>
      run === undefined
        ? Effect.succeed([])
        : Effect.map(Engine.events(run.runId), (events) => events.flatMap((e) => e._tag === "StepAttemptFailed" ? [e] : [])))
    // The worker waits on the stand-in over real HTTP: look again after a few real milliseconds.
    while ((yield* failedSoFar).length < 2) yield* TestServices.provideLive(Effect.sleep("5 millis"))
    yield* Fiber.interrupt(worker)
    const [run] = yield* Engine.runs({ key })
    expect(run!.status).toBe("running")
    const failed = yield* failedSoFar
    expect(failed.map((e) => [e.attempt, e.failure.rule, e.retryDelayMs])).toEqual([
      [1, "schema-drift", 0],
      [2, "anthropic-error-type", 10_000]
    ])
    expect(yield* meter).toMatchObject({ calls: 3, billedCalls: 2 })
    return run!.runId
  })

/** What a takeover did to extract: its failed attempts, and whether it waited out the backoff it inherited. */
const afterTakeover = (runId: string) =>
  Effect.gen(function*() {
    const events = yield* Engine.events(runId)
    const failed = events.flatMap((e) => e._tag === "StepAttemptFailed" ? [e] : [])
    const [, beforeCrash, resumed] = failed
    // The resumed attempt started no sooner than the retry the dead worker had scheduled.
    expect(resumed!.startedAt).toBeGreaterThanOrEqual(beforeCrash!.at + beforeCrash!.retryDelayMs!)
    // The summary was served from the log, not asked for (or paid) again.
    expect(events.some((e) => e._tag === "StepsServed" && e.stepIds.includes("summarize#0"))).toBe(true)
    const m = yield* meter
    expect(m.requests.filter((r) => JSON.stringify(r).includes("Summarise:"))).toHaveLength(1)
    return { failed, meter: m }
  })

const stepEvents = (runKey: string) =>
  Effect.gen(function*() {
    const [run] = yield* Engine.runs({ key: runKey })
    return yield* Engine.events(run!.runId)
  })

layer(AnthropicStandIn.layer())("Anthropic.messageStep against the stand-in, with the real SDK", (it) => {
  describe("calls and usage", () => {
    it.effect("a text step returns the reply's text and journals the call's usage with the completion", () =>
      Effect.gen(function*() {
        yield* script({
          text: "A short summary.",
          usage: { input_tokens: 8000, output_tokens: 350, cache_creation_input_tokens: 100, cache_read_input_tokens: 7 }
        })
        const summarize = Anthropic.messageStep({
          name: "summarize",
          model: "claude-sonnet-4-6",
          maxTokens: 1024,
          system: "You summarise reports.",
          input: Schema.String,
          prompt: (text) => `Summarise:\n${text}`
        })
        const out = yield* Engine.run(single(summarize), "rows", { key: "t1" })
        expect(out).toBe("A short summary.")
        const events = yield* stepEvents("t1")
        const completed = events.find((e) => e._tag === "StepCompleted")
        assert(completed?._tag === "StepCompleted")
        expect(completed.usage).toEqual([
          { model: "claude-sonnet-4-6", inputTokens: 8000, outputTokens: 350, cacheWriteTokens: 100, cacheReadTokens: 7 }
        ])
        const m = yield* meter
        expect(m.billedCalls).toBe(1)
        // The request the SDK sent: the system prompt, the user text, the model and max_tokens.
        expect(m.requests[0]).toMatchObject({
          model: "claude-sonnet-4-6",
          max_tokens: 1024,
          system: "You summarise reports.",
          messages: [{ role: "user", content: "Summarise:\nrows" }]
        })
      }).pipe(Effect.provide(fresh)))

    it.effect("the client is built with its own retries off: a 529 is one call, and ledgerflow's policy retries it", () =>
      Effect.gen(function*() {
        yield* script(
          { fault: "status", status: 529 },
          { fault: "status", status: 429, retryAfter: 3 },
          { text: "done", usage: { input_tokens: 50, output_tokens: 5 } }
        )
        const step = Anthropic.messageStep({
          name: "answer",
          model: "claude-haiku-4-5",
          maxTokens: 64,
          input: Schema.String,
          prompt: (q) => q,
          retry: fast
        })
        const out = yield* withTime(Engine.run(single(step), "q", { key: "t2" }))
        expect(out).toBe("done")
        const m = yield* meter
        expect(m.calls).toBe(3)
        expect(m.billedCalls).toBe(1)
        const failed = (yield* stepEvents("t2")).filter((e) => e._tag === "StepAttemptFailed")
        expect(failed.map((e) => [e.failure._tag, e.failure.rule, e.retryDelayMs, e.usage])).toEqual([
          ["Transient", "anthropic-error-type", 1000, undefined],
          // The server's retry-after (3 s) wins over the 2 s backoff.
          ["Transient", "anthropic-error-type", 3000, undefined]
        ])
      }).pipe(Effect.provide(fresh)))

    it.effect("an invalid request is Deterministic: not retried, one call", () =>
      Effect.gen(function*() {
        yield* script({ fault: "status", status: 400, message: "max_tokens: too large" })
        const step = Anthropic.messageStep({ name: "answer", model: "claude-haiku-4-5", maxTokens: 64, input: Schema.String, prompt: (q) => q })
        const failure = yield* Effect.flip(Engine.run(single(step), "q", { key: "t3" }))
        assert(Failure.isDeterministic(failure))
        expect(failure.rule).toBe("anthropic-error-type")
        expect((yield* meter).calls).toBe(1)
      }).pipe(Effect.provide(fresh)))

    it.effect("without an input Schema the journaled input is the rendered prompt: another prompt is not served the old reply", () =>
      Effect.gen(function*() {
        let template = "Say hi to"
        const greet = Anthropic.messageStep({
          name: "greet",
          model: "claude-haiku-4-5",
          maxTokens: 32,
          prompt: (who: string) => `${template} ${who}`
        })
        const pipeline = single(greet, "greeter")
        expect(yield* Engine.run(pipeline, "ada", { key: "g" })).toBe("Say hi to ada")
        template = "Say bye to"
        const replay = yield* Engine.replay(pipeline, (yield* Engine.runs({ key: "g" }))[0]!.runId)
        expect(replay.outcome).toBe("diverged")
      }).pipe(Effect.provide(fresh)))
  })

  describe("streaming", () => {
    it.effect("a streamed step takes its usage from message_delta", () =>
      Effect.gen(function*() {
        yield* script({
          text: "A streamed answer that spans several text deltas.",
          usage: { input_tokens: 1200, output_tokens: 240, cache_read_input_tokens: 800 }
        })
        const step = Anthropic.messageStep({
          name: "long",
          model: "claude-sonnet-4-6",
          maxTokens: 4096,
          input: Schema.String,
          prompt: (q) => q,
          stream: true
        })
        expect(yield* Engine.run(single(step), "q", { key: "s1" })).toBe("A streamed answer that spans several text deltas.")
        const completed = (yield* stepEvents("s1")).find((e) => e._tag === "StepCompleted")
        assert(completed?._tag === "StepCompleted")
        expect(completed.usage).toEqual([
          { model: "claude-sonnet-4-6", inputTokens: 1200, outputTokens: 240, cacheWriteTokens: 0, cacheReadTokens: 800 }
        ])
        expect((yield* meter).requests[0]).toMatchObject({ stream: true })
      }).pipe(Effect.provide(fresh)))

    it.effect("an event: error mid-stream is classified by its error.type: overloaded is retried, invalid_request is not", () =>
      Effect.gen(function*() {
        yield* script(
          { fault: "streamError", errorType: "overloaded_error" },
          { text: "second time lucky", usage: { input_tokens: 10, output_tokens: 4 } },
          { fault: "streamError", errorType: "invalid_request_error", message: "prompt is too long" }
        )
        const step = Anthropic.messageStep({
          name: "streamed",
          model: "claude-sonnet-4-6",
          maxTokens: 256,
          input: Schema.String,
          prompt: (q) => q,
          stream: true,
          retry: fast
        })
        expect(yield* withTime(Engine.run(single(step), "a", { key: "s2" }))).toBe("second time lucky")
        const [overloaded] = (yield* stepEvents("s2")).filter((e) => e._tag === "StepAttemptFailed")
        assert(overloaded?._tag === "StepAttemptFailed")
        expect(overloaded.failure).toMatchObject({ _tag: "Transient", rule: "anthropic-error-type" })
        expect(overloaded.failure.reason).toContain("raised mid-stream")
        expect(overloaded.usage).toBeUndefined()

        const failure = yield* Effect.flip(Engine.run(single(step), "b", { key: "s3" }))
        expect(failure).toMatchObject({ _tag: "Deterministic", rule: "anthropic-error-type" })
        const m = yield* meter
        expect(m.calls).toBe(3)
        expect(m.billedCalls).toBe(1)
      }).pipe(Effect.provide(fresh)))
  })

  describe("structured output and schema drift", () => {
    it.effect("the output Schema is sent as the tool's input schema and the tool call is decoded with it", () =>
      Effect.gen(function*() {
        yield* script({ toolUse: { name: "extract", input: { title: "Q3", total: 12, tags: ["ads"] } } })
        const extract = Anthropic.messageStep({
          name: "extract",
          model: "claude-sonnet-4-6",
          maxTokens: 512,
          input: Schema.String,
          output: Report,
          prompt: (text) => `Extract the report from: ${text}`
        })
        const out = yield* Engine.run(single(extract), "q3 data", { key: "x1" })
        expect(out).toEqual({ title: "Q3", total: 12, tags: ["ads"] })
        const request = (yield* meter).requests[0]
        expect(request).toMatchObject({
          tool_choice: { type: "tool", name: "extract" },
          tools: [{
            name: "extract",
            input_schema: {
              type: "object",
              required: ["title", "total", "tags"],
              properties: { title: { type: "string" }, total: { type: "number" }, tags: { type: "array" } }
            }
          }]
        })
      }).pipe(Effect.provide(fresh)))

    it.effect("drift: a tool call missing a field twice then correct (cap 2) is two drift attempts with one fingerprint, wasted, then decoded", () =>
      Effect.gen(function*() {
        const drifted = { toolUse: { name: "extract", input: { title: "Q3", tags: ["ads"] } }, usage: { input_tokens: 900, output_tokens: 40 } }
        yield* script(drifted, drifted, {
          toolUse: { name: "extract", input: { title: "Q3", total: 12, tags: ["ads"] } },
          usage: { input_tokens: 900, output_tokens: 45 }
        })
        const extract = extractReport({ driftCap: 2 })
        // Drift retries do not wait: no clock needs to move.
        expect(yield* Engine.run(single(extract), "q3", { key: "d1" })).toEqual({ title: "Q3", total: 12, tags: ["ads"] })
        const events = yield* stepEvents("d1")
        const drifts = events.filter((e) => e._tag === "StepAttemptFailed")
        expect(drifts).toHaveLength(2)
        for (const e of drifts) {
          assert(e._tag === "StepAttemptFailed")
          expect(e.failure).toMatchObject({ _tag: "Transient", rule: "schema-drift", cause: { name: "SchemaDrift" } })
          expect(Anthropic.driftFingerprint(e.failure)).toBe("{tags:[string],title:string}")
          expect(e.failure.cause?.message).toContain("total")
          expect(e.usage).toEqual([{ model: "claude-sonnet-4-6", inputTokens: 900, outputTokens: 40, cacheWriteTokens: 0, cacheReadTokens: 0 }])
          expect(e.retryDelayMs).toBe(0)
        }
        expect(events.filter((e) => e._tag === "StepCompleted")).toHaveLength(1)
        expect((yield* meter).billedCalls).toBe(3)

        const report = yield* CostLedger.report({ by: "step" })
        expect(report.totals.spent).toMatchObject({ calls: 3, inputTokens: 2700, outputTokens: 125 })
        expect(report.totals.wasted).toMatchObject({ calls: 2, inputTokens: 1800, outputTokens: 80 })
        expect(report.totals.wasted.usd).toBeCloseTo((1800 * 3 + 80 * 15) / 1e6, 10)
        expect(report.drift).toEqual([{
          pipeline: "single",
          step: "extract",
          fingerprint: "{tags:[string],title:string}",
          count: 2,
          wasted: { usd: (1800 * 3 + 80 * 15) / 1e6, usdExact: "0.0066", inputTokens: 1800, outputTokens: 80, cacheWriteTokens: 0, cacheReadTokens: 0, calls: 2 },
          runs: [expect.stringMatching(/^run_/)],
          firstAt: expect.any(Number),
          lastAt: expect.any(Number)
        }])
      }).pipe(Effect.provide(fresh)))

    it.effect("drift past its cap fails the run Deterministic, so 5 redeliveries pay for no more drift", () =>
      Effect.gen(function*() {
        const drifted = { json: { title: 7 } }
        yield* script(drifted, drifted)
        const extract = extractReport({ toolChoice: "auto" })
        const pipeline = single(extract)
        const failure = yield* Effect.flip(Engine.run(pipeline, "q3", { key: "d2" }))
        assert(Failure.isDeterministic(failure))
        expect(failure.rule).toBe("schema-drift")
        expect(failure.reason).toContain("drift cap reached (2 drifted replies; driftCap 1)")
        expect(failure.cause?.code).toBe("{title:number}")
        for (let i = 0; i < 5; i++) expect(yield* Effect.flip(Engine.run(pipeline, "q3", { key: "d2" }))).toEqual(failure)
        expect((yield* meter).billedCalls).toBe(2)
        expect((yield* meter).requests[0]).toMatchObject({ tool_choice: { type: "auto" } })
      }).pipe(Effect.provide(fresh)))

    it.effect("a reply that is not JSON at all is drift too, fingerprinted as such", () =>
      Effect.gen(function*() {
        yield* script({ text: "Sorry, I cannot help with that." }, { json: { title: "Q3", total: 1, tags: [] } })
        const extract = Anthropic.messageStep({
          name: "extract",
          model: "claude-sonnet-4-6",
          maxTokens: 512,
          input: Schema.String,
          output: Report,
          prompt: (text) => text
        })
        expect(yield* Engine.run(single(extract), "x", { key: "d3" })).toEqual({ title: "Q3", total: 1, tags: [] })
        const [drift] = (yield* stepEvents("d3")).filter((e) => e._tag === "StepAttemptFailed")
        assert(drift?._tag === "StepAttemptFailed")
        expect(Anthropic.driftFingerprint(drift.failure)).toBe("text (not JSON)")
      }).pipe(Effect.provide(fresh)))
  })

  describe("a run taken over after its worker stopped mid-backoff keeps both caps", () => {
    it.effect("the retry budget: the 529 before the crash counts, so one more 529 ends the run (attempt 3, no fresh budget)", () =>
      Effect.gen(function*() {
        const pipeline = summarizeThenExtract()
        const runId = yield* crashedInBackoff(pipeline, "c1")
        yield* script({ fault: "status", status: 529 })
        const failure = yield* Effect.flip(withTime(Engine.run(pipeline, "the Q3 report", { key: "c1" })))
        assert(Failure.isTransient(failure), `expected the run to end Transient, got ${failure._tag}: ${failure.message}`)
        expect(failure.runId).toBe(runId)
        const { failed, meter: m } = yield* afterTakeover(runId)
        // Attempts numbered on; the budget of 2 non-drift attempts spent across the two processes.
        expect(failed.map((e) => [e.attempt, e.failure.rule, e.retryDelayMs, e.giveUp !== undefined])).toEqual([
          [1, "schema-drift", 0, false],
          [2, "anthropic-error-type", 10_000, false],
          [3, "anthropic-error-type", undefined, true]
        ])
        // The resume paid for nothing: one more call, a 529, unbilled.
        expect(m).toMatchObject({ calls: 4, billedCalls: 2 })
        expect((yield* Engine.getRun(runId)).status).toBe("failed")
      }).pipe(Effect.provide(fresh)))

    it.effect("the drift cap: the drift before the crash counts apart from the budget, so one more drift fails Deterministic", () =>
      Effect.gen(function*() {
        const pipeline = summarizeThenExtract()
        const runId = yield* crashedInBackoff(pipeline, "c2")
        yield* script({ toolUse: { name: "extract", input: { title: "Q3" } }, usage: { input_tokens: 300, output_tokens: 25 } })
        const failure = yield* Effect.flip(withTime(Engine.run(pipeline, "the Q3 report", { key: "c2" })))
        assert(Failure.isDeterministic(failure))
        expect(failure.rule).toBe("schema-drift")
        expect(failure.reason).toContain("drift cap reached (2 drifted replies; driftCap 1)")
        const { failed, meter: m } = yield* afterTakeover(runId)
        expect(failed.map((e) => [e.attempt, e.failure.rule, e.failure._tag])).toEqual([
          [1, "schema-drift", "Transient"],
          [2, "anthropic-error-type", "Transient"],
          [3, "schema-drift", "Deterministic"]
        ])
        // The resume paid for exactly one call: the drifted reply.
        expect(m).toMatchObject({ calls: 4, billedCalls: 3 })
      }).pipe(Effect.provide(fresh)))
  })
})

describe("Anthropic: bad input", () => {
  it.effect("no API key and no stand-in: a typed error saying how to set ANTHROPIC_API_KEY or use the stand-in", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Anthropic.make())
      expect(error._tag).toBe("AnthropicConfigError")
      expect(error.message).toContain("set the ANTHROPIC_API_KEY environment variable")
      expect(error.message).toContain("ANTHROPIC_BASE_URL")
      expect(error.message).toContain("ledgerflow-standin")
      // As a layer: building it fails the same way, before any step runs.
      const exit = yield* Effect.exit(Layer.build(Anthropic.layer()).pipe(Effect.scoped))
      expect(Exit.isFailure(exit)).toBe(true)
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))))

  it.effect("the key and the base URL are read from config when not given", () =>
    Effect.gen(function*() {
      const service = yield* Anthropic.make()
      expect(service.baseURL).toBe("http://127.0.0.1:4100")
      expect(service.client.maxRetries).toBe(0)
      const keyed = yield* Anthropic.make().pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ANTHROPIC_API_KEY", "sk-test"]])))
      )
      expect(keyed.baseURL).toBe("https://api.anthropic.com")
      expect(keyed.client.apiKey).toBe("sk-test")
      expect(keyed.client.timeout).toBe(600_000)
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ANTHROPIC_BASE_URL", "http://127.0.0.1:4100"]])))))

  it("an output Schema that cannot be a tool's input schema is an error at construction", () => {
    const base = { name: "extract", model: "claude-sonnet-4-6", maxTokens: 64, input: Schema.String, prompt: (s: string) => s }
    expect(() => Anthropic.messageStep({ ...base, output: Schema.Struct({ at: Schema.DateFromSelf }) })).toThrow(
      /Anthropic.messageStep "extract": the output Schema cannot be the input schema of a tool.*it has no JSON Schema/
    )
    expect(() => Anthropic.messageStep({ ...base, output: Schema.Array(Schema.String) })).toThrow(
      /a tool's input is a JSON object, and this Schema describes an array; wrap it, e.g. Schema.Struct\(\{ value: ... \}\)/
    )
    expect(() => Anthropic.messageStep({ ...base, output: Schema.Struct({ at: Schema.Date }) })).not.toThrow()
    expect(() => Anthropic.messageStep({ ...base, maxTokens: 0 })).toThrow(/maxTokens must be an integer >= 1/)
    expect(() => Anthropic.messageStep({ ...base, failOverCeiling: true })).toThrow(/failOverCeiling needs a contextCeiling/)
  })

  it("the journal's fold counts drifted attempts apart from the retry budget (a takeover starts from these counts)", () => {
    const drift = Anthropic.driftFailure(
      new Anthropic.SchemaDrift({ stepName: "extract", fingerprint: "{title:string}", message: "total is missing" })
    )
    const attempt = (n: number, failure: Failure.Failure) =>
      new Event.StepAttemptFailed({ at: n, stepId: "extract#0", name: "extract", inputHash: "h", attempt: n, startedAt: n, failure, retryDelayMs: 0 })
    const state = Journal.fold([
      attempt(1, drift),
      attempt(2, Failure.transient("HTTP 529", { rule: "anthropic-error-type" })),
      attempt(3, drift)
    ])
    expect(state.steps.get("extract#0")).toMatchObject({ failedAttempts: 3, budget: { attempts: 1, drifts: 2 } })
    expect(Anthropic.driftFingerprint(drift)).toBe("{title:string}")
  })

  it("the estimate is the prompt's characters / 4 and max tokens out", () => {
    const step = Anthropic.messageStep({
      name: "summarize",
      model: "claude-sonnet-4-6",
      maxTokens: 1024,
      system: "s".repeat(400),
      input: Schema.String,
      prompt: (text) => text
    })
    expect(step.estimate?.(promptOf(8000))).toEqual({ model: "claude-sonnet-4-6", inputTokens: 8100, outputTokens: 1024 })
  })
})
