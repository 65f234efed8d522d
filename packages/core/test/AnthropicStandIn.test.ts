import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  OverloadedError,
  RateLimitError
} from "@anthropic-ai/sdk"
import { assert, describe, expect, it, layer } from "@effect/vitest"
import { AnthropicStandIn } from "@ledgerflow/core/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

const clientFor = (url: string, options: { readonly timeout?: number } = {}) =>
  new Anthropic({ apiKey: "test", baseURL: url, maxRetries: 0, ...options })

const params = (content: string, extra: { readonly model?: string } = {}) => ({
  model: extra.model ?? "claude-sonnet-4-6",
  max_tokens: 1024,
  messages: [{ role: "user" as const, content }]
})

/** The SDK call's rejection, as a value. */
const failure = <A>(call: () => PromiseLike<A>): Effect.Effect<unknown> =>
  Effect.tryPromise({ try: async () => call(), catch: (error) => error }).pipe(
    Effect.flip,
    Effect.orElseSucceed(() => "the call succeeded")
  )

/** A fresh script and meter on the shared stand-in, and a client pointed at it. */
const fresh = Effect.gen(function*() {
  const standIn = yield* AnthropicStandIn.AnthropicStandIn
  yield* standIn.reset
  return { standIn, client: clientFor(standIn.url) }
})

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
    return { status: response.status, headers: response.headers, body: await response.json() }
  })

const apiHeaders = { "x-api-key": "test", "anthropic-version": "2023-06-01" }

layer(AnthropicStandIn.layer())("AnthropicStandIn with the real SDK", (it) => {
  describe("replies", () => {
    it.effect("a text reply carries its scripted usage to message.usage and to the meter", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({
          text: "Quarterly summary",
          usage: {
            input_tokens: 8000,
            output_tokens: 350,
            cache_creation_input_tokens: 100,
            cache_read_input_tokens: 7
          }
        })
        const message = yield* Effect.promise(() => client.messages.create(params("Summarise")))
        expect(message.content).toEqual([{ type: "text", text: "Quarterly summary" }])
        expect(message.stop_reason).toBe("end_turn")
        expect(message.model).toBe("claude-sonnet-4-6")
        expect(message.usage).toMatchObject({
          input_tokens: 8000,
          output_tokens: 350,
          cache_creation_input_tokens: 100,
          cache_read_input_tokens: 7
        })
        expect(message._request_id).toMatch(/^req_/)
        const meter = yield* standIn.meter
        expect(meter.calls).toBe(1)
        expect(meter.billedCalls).toBe(1)
        expect(meter.byModel).toEqual({
          "claude-sonnet-4-6": { input: 8000, output: 350, cacheWrite: 100, cacheRead: 7, calls: 1 }
        })
      }))

    it.effect("unscripted usage is derived from the prompt: 32K characters are about 8K input tokens", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ text: "x".repeat(400) })
        const message = yield* Effect.promise(() => client.messages.create(params("a".repeat(32_000))))
        expect(message.usage.input_tokens).toBeGreaterThanOrEqual(7_900)
        expect(message.usage.input_tokens).toBeLessThanOrEqual(8_100)
        expect(message.usage.output_tokens).toBe(100)
        const meter = yield* standIn.meter
        expect(meter.byModel["claude-sonnet-4-6"]?.input).toBe(message.usage.input_tokens)
        // The prompt the server received, for assertions on context size.
        expect(meter.requests).toHaveLength(1)
        expect(meter.requests[0]).toMatchObject({ model: "claude-sonnet-4-6", max_tokens: 1024 })
      }))

    it.effect("system, tools and tool results count toward the derived input tokens", () =>
      Effect.gen(function*() {
        const { client } = yield* fresh
        const bare = yield* Effect.promise(() => client.messages.create(params("q".repeat(400))))
        const rich = yield* Effect.promise(() =>
          client.messages.create({
            ...params("q".repeat(400)),
            system: "s".repeat(4000),
            tools: [{ name: "lookup", description: "d".repeat(400), input_schema: { type: "object" } }]
          })
        )
        expect(bare.usage.input_tokens).toBe(100)
        expect(rich.usage.input_tokens).toBeGreaterThan(100 + 1000 + 100)
      }))

    it.effect("a json reply is text holding the JSON, served as scripted even when its shape drifted", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ json: { title: "Q3", total: 12 } }, { json: { Title: "Q3", total: "12" } })
        const good = yield* Effect.promise(() => client.messages.create(params("report")))
        const drifted = yield* Effect.promise(() => client.messages.create(params("report")))
        assert(good.content[0]?.type === "text")
        expect(JSON.parse(good.content[0].text)).toEqual({ title: "Q3", total: 12 })
        assert(drifted.content[0]?.type === "text")
        expect(JSON.parse(drifted.content[0].text)).toEqual({ Title: "Q3", total: "12" })
        expect((yield* standIn.meter).billedCalls).toBe(2)
      }))

    it.effect("a tool_use reply stops with tool_use and carries the tool's input", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ toolUse: { name: "write_row", input: { id: 7, tags: ["a"] } }, text: "Writing." })
        const message = yield* Effect.promise(() => client.messages.create(params("go")))
        expect(message.stop_reason).toBe("tool_use")
        expect(message.content[0]).toEqual({ type: "text", text: "Writing." })
        const call = message.content[1]
        assert(call?.type === "tool_use")
        expect(call.name).toBe("write_row")
        expect(call.input).toEqual({ id: 7, tags: ["a"] })
        expect(call.id).toMatch(/^toolu_/)
      }))

    it.effect("an empty script answers with the default reply: an echo of the last user text", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        const message = yield* Effect.promise(() => client.messages.create(params("hello there")))
        expect(message.content).toEqual([{ type: "text", text: "hello there" }])
        expect(yield* standIn.pending).toBe(0)
      }))

    it.effect("the script is a queue: entries are consumed in order, then the default reply", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ text: "one" }, { fault: "status", status: 529 }, { text: "two" })
        expect(yield* standIn.pending).toBe(3)
        const first = yield* Effect.promise(() => client.messages.create(params("q")))
        const second = yield* failure(() => client.messages.create(params("q")))
        const third = yield* Effect.promise(() => client.messages.create(params("q")))
        const fourth = yield* Effect.promise(() => client.messages.create(params("echoed")))
        expect(first.content).toEqual([{ type: "text", text: "one" }])
        expect(second).toBeInstanceOf(OverloadedError)
        expect(third.content).toEqual([{ type: "text", text: "two" }])
        expect(fourth.content).toEqual([{ type: "text", text: "echoed" }])
      }))

    it.effect("count_tokens answers the derived prompt size and is not a billed call", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        const counted = yield* Effect.promise(() =>
          client.messages.countTokens({
            model: "claude-sonnet-4-6",
            messages: [{ role: "user", content: "a".repeat(4000) }]
          })
        )
        expect(counted.input_tokens).toBe(1000)
        expect((yield* standIn.meter).calls).toBe(0)
      }))
  })

  describe("HTTP errors", () => {
    it.effect("529 raises OverloadedError with error.type overloaded_error and a request id", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "status", status: 529, errorType: "overloaded_error" })
        const error = yield* failure(() => client.messages.create(params("q")))
        assert(error instanceof OverloadedError)
        expect(error).toBeInstanceOf(InternalServerError)
        expect(error.status).toBe(529)
        expect(error.type).toBe("overloaded_error")
        expect(error.apiMessage).toBe("Overloaded")
        expect(error.error).toMatchObject({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })
        expect(error.requestID).toMatch(/^req_standin_/)
        const meter = yield* standIn.meter
        expect(meter.calls).toBe(1)
        expect(meter.billedCalls).toBe(0)
        expect(meter.byModel).toEqual({})
      }))

    it.effect("429 exposes retry-after and retry-after-ms on the error's headers", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        const date = "Wed, 21 Oct 2037 07:28:00 GMT"
        yield* standIn.script(
          { fault: "status", status: 429, retryAfter: 7, retryAfterMs: 6500 },
          { fault: "status", status: 429, retryAfter: date }
        )
        const seconds = yield* failure(() => client.messages.create(params("q")))
        assert(seconds instanceof RateLimitError)
        expect(seconds.type).toBe("rate_limit_error")
        expect(seconds.headers.get("retry-after")).toBe("7")
        expect(seconds.headers.get("retry-after-ms")).toBe("6500")
        const httpDate = yield* failure(() => client.messages.create(params("q")))
        assert(httpDate instanceof RateLimitError)
        expect(httpDate.headers.get("retry-after")).toBe(date)
        expect(httpDate.headers.get("retry-after-ms")).toBeNull()
      }))

    it.effect("x-should-retry is sent as scripted, and an error code lands in error.details", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script(
          { fault: "status", status: 500, shouldRetry: false },
          { fault: "status", status: 400, shouldRetry: true, message: "transient lock" },
          { fault: "status", status: 429, errorCode: "enforced_spend_limit_reached", message: "spend limit reached" }
        )
        const noRetry = yield* failure(() => client.messages.create(params("q")))
        assert(noRetry instanceof InternalServerError)
        expect(noRetry.type).toBe("api_error")
        expect(noRetry.headers.get("x-should-retry")).toBe("false")
        const retry = yield* failure(() => client.messages.create(params("q")))
        assert(retry instanceof BadRequestError)
        expect(retry.headers.get("x-should-retry")).toBe("true")
        expect(retry.apiMessage).toBe("transient lock")
        const spend = yield* failure(() => client.messages.create(params("q")))
        assert(spend instanceof RateLimitError)
        expect(spend.constructor.name).toBe("EnforcedSpendLimitReachedError")
        expect(spend.errorCode).toBe("enforced_spend_limit_reached")
      }))

    it.effect("the SDK retries on x-should-retry when its own retries are on (each attempt is a call)", () =>
      Effect.gen(function*() {
        const { standIn } = yield* fresh
        const retrying = new Anthropic({ apiKey: "test", baseURL: standIn.url, maxRetries: 1 })
        yield* standIn.script({ fault: "status", status: 400, shouldRetry: true, retryAfterMs: 1 }, { text: "ok" })
        const message = yield* Effect.promise(() => retrying.messages.create(params("q")))
        expect(message.content).toEqual([{ type: "text", text: "ok" }])
        const meter = yield* standIn.meter
        expect(meter.calls).toBe(2)
        expect(meter.billedCalls).toBe(1)
      }))
  })

  describe("connection faults", () => {
    it.effect("reset raises APIConnectionError caused by ECONNRESET", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "reset" })
        const error = yield* failure(() => client.messages.create(params("q")))
        assert(error instanceof APIConnectionError)
        expect(error.status).toBeUndefined()
        expect(error.message).toBe("Connection error.")
        // TypeError: fetch failed ← Error: read ECONNRESET
        assert(error.cause instanceof TypeError)
        expect(error.cause.message).toBe("fetch failed")
        expect(error.cause.cause).toMatchObject({ code: "ECONNRESET" })
        expect((yield* standIn.meter)).toMatchObject({ calls: 1, billedCalls: 0 })
      }))

    it.effect("a response cut after its headers raises TypeError: terminated (UND_ERR_SOCKET), not APIError", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "cutAfterHeaders" })
        const error = yield* failure(() => client.messages.create(params("q")))
        expect(error).not.toBeInstanceOf(APIError)
        assert(error instanceof TypeError)
        expect(error.message).toBe("terminated")
        expect(error.cause).toMatchObject({ code: "UND_ERR_SOCKET" })
        expect((yield* standIn.meter)).toMatchObject({ calls: 1, billedCalls: 0 })
      }))

    it.effect("a stream cut after some events raises TypeError: terminated while iterating", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "cutAfterHeaders", afterEvents: 2, reply: { text: "a long answer" } })
        const seen: Array<string> = []
        const error = yield* failure(async () => {
          const stream = await client.messages.create({ ...params("q"), stream: true })
          for await (const event of stream) seen.push(event.type)
        })
        expect(seen).toEqual(["message_start", "content_block_start"])
        assert(error instanceof TypeError)
        expect(error.message).toBe("terminated")
        expect(error.cause).toMatchObject({ code: "UND_ERR_SOCKET" })
      }))

    it.effect("a reply slower than the client's timeout raises APIConnectionTimeoutError and is not billed", () =>
      Effect.gen(function*() {
        const { standIn } = yield* fresh
        const impatient = clientFor(standIn.url, { timeout: 100 })
        yield* standIn.script({ fault: "slow", delayMs: 5_000, then: { text: "too late" } })
        const error = yield* failure(() => impatient.messages.create(params("q")))
        assert(error instanceof APIConnectionTimeoutError)
        expect(error).toBeInstanceOf(APIConnectionError)
        expect(error.message).toBe("Request timed out.")
        expect((yield* standIn.meter)).toMatchObject({ calls: 1, billedCalls: 0 })
      }))

    it.effect("a slow reply within the timeout is answered and billed", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "slow", delayMs: 20, then: { text: "late but fine" } })
        const message = yield* Effect.promise(() => client.messages.create(params("q")))
        expect(message.content).toEqual([{ type: "text", text: "late but fine" }])
        expect((yield* standIn.meter).billedCalls).toBe(1)
      }))
  })

  describe("streaming", () => {
    it.effect("message_start reports at most one output token; the final usage comes from message_delta", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({
          text: "A streamed answer that spans several text deltas.",
          usage: { input_tokens: 1200, output_tokens: 240, cache_read_input_tokens: 800 }
        })
        const events = yield* Effect.promise(async () => {
          const stream = await client.messages.create({ ...params("q"), stream: true })
          const all = []
          for await (const event of stream) all.push(event)
          return all
        })
        expect(events.map((event) => event.type)).toEqual([
          "message_start",
          "content_block_start",
          "content_block_delta",
          "content_block_delta",
          "content_block_delta",
          "content_block_delta",
          "content_block_stop",
          "message_delta",
          "message_stop"
        ])
        const start = events[0]
        assert(start?.type === "message_start")
        expect(start.message.usage.output_tokens).toBeLessThanOrEqual(1)
        expect(start.message.usage.input_tokens).toBe(1200)
        const delta = events[7]
        assert(delta?.type === "message_delta")
        expect(delta.usage).toMatchObject({ output_tokens: 240, input_tokens: 1200, cache_read_input_tokens: 800 })
        expect(delta.delta.stop_reason).toBe("end_turn")
        expect((yield* standIn.meter).byModel["claude-sonnet-4-6"]).toEqual({
          input: 1200,
          output: 240,
          cacheWrite: 0,
          cacheRead: 800,
          calls: 1
        })
      }))

    it.effect("messages.stream() assembles the text and its final message's usage is message_delta's", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ text: "héllo 👋 world, streamed in pieces", usage: { output_tokens: 42 } })
        const message = yield* Effect.promise(() => client.messages.stream(params("q")).finalMessage())
        expect(message.content).toEqual([{ type: "text", text: "héllo 👋 world, streamed in pieces" }])
        expect(message.usage.output_tokens).toBe(42)
        expect(message.usage.input_tokens).toBe(1)
        expect(message.stop_reason).toBe("end_turn")
      }))

    it.effect("a streamed tool call arrives as input_json_delta and is parsed by the SDK", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        const input = { path: "reports/q3.md", body: "x".repeat(100), nested: { n: 1 } }
        yield* standIn.script({ toolUse: { name: "write_file", input } })
        const message = yield* Effect.promise(() => client.messages.stream(params("q")).finalMessage())
        expect(message.stop_reason).toBe("tool_use")
        const call = message.content[0]
        assert(call?.type === "tool_use")
        expect(call.name).toBe("write_file")
        expect(call.input).toEqual(input)
      }))

    it.effect("event: error mid-stream raises a plain APIError with no status; its type decides; not billed", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "streamError", errorType: "overloaded_error" })
        const error = yield* failure(() => client.messages.stream(params("q")).finalMessage())
        assert(error instanceof APIError)
        expect(error.constructor).toBe(APIError)
        expect(error.status).toBeUndefined()
        expect(error.type).toBe("overloaded_error")
        expect(error.error).toMatchObject({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })
        expect(error.requestID).toMatch(/^req_standin_/)
        expect((yield* standIn.meter)).toMatchObject({ calls: 1, billedCalls: 0, byModel: {} })
      }))

    it.effect("a streamError scripted for a non-streaming request is the matching HTTP error", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "streamError", errorType: "overloaded_error" })
        const error = yield* failure(() => client.messages.create(params("q")))
        assert(error instanceof OverloadedError)
        expect(error.type).toBe("overloaded_error")
      }))

    it.effect("an HTTP error scripted for a streaming request fails before the stream starts", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script({ fault: "status", status: 529 })
        const error = yield* failure(() => client.messages.stream(params("q")).finalMessage())
        assert(error instanceof OverloadedError)
        expect(error.status).toBe(529)
      }))
  })

  describe("validation and the meter", () => {
    it.effect("a request without credentials is a 401 authentication_error", () =>
      Effect.gen(function*() {
        const { standIn } = yield* fresh
        const response = yield* post(`${standIn.url}/v1/messages`, params("q"), { "anthropic-version": "2023-06-01" })
        expect(response.status).toBe(401)
        expect(response.body).toMatchObject({ type: "error", error: { type: "authentication_error" } })
        expect(response.headers.get("request-id")).toMatch(/^req_/)
        // Through the SDK: an explicitly empty key header.
        const client = new Anthropic({
          apiKey: null,
          baseURL: standIn.url,
          maxRetries: 0,
          defaultHeaders: { authorization: null }
        })
        const error = yield* failure(() => client.messages.create(params("q")))
        assert(error instanceof AuthenticationError)
        expect(error.type).toBe("authentication_error")
      }))

    it.effect("a body without model, max_tokens or messages is a 400 invalid_request_error", () =>
      Effect.gen(function*() {
        const { standIn } = yield* fresh
        const url = `${standIn.url}/v1/messages`
        const noModel = yield* post(url, { max_tokens: 10, messages: [] }, apiHeaders)
        const noMax = yield* post(url, { model: "m", messages: [] }, apiHeaders)
        const noMessages = yield* post(url, { model: "m", max_tokens: 10 }, apiHeaders)
        const notJson = yield* post(url, "{nope", apiHeaders)
        for (const response of [noModel, noMax, noMessages, notJson]) {
          expect(response.status).toBe(400)
          expect(response.body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } })
        }
        expect(noModel.body).toMatchObject({ error: { message: "model: Field required" } })
        expect(noMax.body).toMatchObject({ error: { message: "max_tokens: Field required" } })
        expect(noMessages.body).toMatchObject({ error: { message: "messages: Field required" } })
        // An invalid request is a call, never billed, and does not consume the script.
        yield* standIn.script({ text: "kept" })
        yield* post(url, { model: "m" }, apiHeaders)
        expect(yield* standIn.pending).toBe(1)
        expect((yield* standIn.meter)).toMatchObject({ calls: 5, billedCalls: 0 })
      }))

    it.effect("the meter counts calls, billed calls and billed tokens per model", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        yield* standIn.script(
          { text: "a", usage: { input_tokens: 100, output_tokens: 10 } },
          { fault: "status", status: 529 },
          { text: "b", usage: { input_tokens: 200, output_tokens: 20, cache_creation_input_tokens: 50 } },
          { fault: "streamError", errorType: "api_error" },
          { text: "c", usage: { input_tokens: 1000, output_tokens: 5, cache_read_input_tokens: 900 } }
        )
        yield* Effect.promise(() => client.messages.create(params("q")))
        yield* failure(() => client.messages.create(params("q")))
        yield* Effect.promise(() => client.messages.stream(params("q")).finalMessage())
        yield* failure(() => client.messages.stream(params("q", { model: "claude-haiku-4-5" })).finalMessage())
        yield* Effect.promise(() => client.messages.create(params("q", { model: "claude-haiku-4-5" })))
        const meter = yield* standIn.meter
        expect(meter.calls).toBe(5)
        expect(meter.billedCalls).toBe(3)
        expect(meter.byModel).toEqual({
          "claude-sonnet-4-6": { input: 300, output: 30, cacheWrite: 50, cacheRead: 0, calls: 2 },
          "claude-haiku-4-5": { input: 1000, output: 5, cacheWrite: 0, cacheRead: 900, calls: 1 }
        })
        expect(meter.requests).toHaveLength(5)
      }))

    it.effect("another process scripts it with POST /_script and reads GET /_meter", () =>
      Effect.gen(function*() {
        const { client, standIn } = yield* fresh
        const scripted = yield* post(`${standIn.url}/_script`, [{ text: "from afar", usage: { output_tokens: 3 } }])
        expect(scripted).toMatchObject({ status: 200, body: { pending: 1 } })
        const bad = yield* post(`${standIn.url}/_script`, { fault: "nope" })
        expect(bad.status).toBe(400)
        const message = yield* Effect.promise(() => client.messages.create(params("q")))
        expect(message.content).toEqual([{ type: "text", text: "from afar" }])
        const meter = yield* Effect.promise(() => fetch(`${standIn.url}/_meter`).then((response) => response.json()))
        expect(meter).toMatchObject({ calls: 1, billedCalls: 1, byModel: { "claude-sonnet-4-6": { output: 3 } } })
      }))
  })
})

describe("AnthropicStandIn lifetime", () => {
  it.scoped("a fixed default reply answers every unscripted call", () =>
    Effect.gen(function*() {
      const standIn = yield* AnthropicStandIn.make({
        defaultReply: { json: { ok: true }, usage: { output_tokens: 2 } }
      })
      const client = clientFor(standIn.url)
      const message = yield* Effect.promise(() => client.messages.create(params("anything")))
      expect(message.content).toEqual([{ type: "text", text: "{\"ok\":true}" }])
      expect(message.usage.output_tokens).toBe(2)
    }))

  it.effect("the server is closed when its scope closes", () =>
    Effect.gen(function*() {
      const url = yield* Effect.scoped(Effect.map(AnthropicStandIn.make(), (standIn) => standIn.url))
      const error = yield* failure(() => clientFor(url).messages.create(params("q")))
      assert(error instanceof APIConnectionError)
      expect(error.cause).toMatchObject({ cause: { code: "ECONNREFUSED" } })
    }))

  it.effect("closing the scope cuts an in-flight slow reply instead of waiting for it", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const standIn = yield* AnthropicStandIn.make().pipe(Scope.extend(scope))
      yield* standIn.script({ fault: "slow", delayMs: 60_000, then: { text: "never sent" } })
      const outcome = clientFor(standIn.url).messages.create(params("q")).then(() => "answered", (error) => error)
      // Wait (on real IO) until the request has reached the server.
      while ((yield* standIn.meter).calls === 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.promise(() => outcome)
      expect(error).toBeInstanceOf(APIConnectionError)
    }))

  it.scoped("a port already in use is a StandInError", () =>
    Effect.gen(function*() {
      const first = yield* AnthropicStandIn.make()
      const error = yield* Effect.flip(AnthropicStandIn.make({ port: first.port }))
      expect(error._tag).toBe("StandInError")
      expect(error.message).toContain("EADDRINUSE")
    }))
})
