/**
 * The stand-in's HTTP server: `node:http` on 127.0.0.1, one Effect per request, run in a `FiberSet`
 * owned by the caller's scope, so closing the scope interrupts in-flight (slow) replies and closes the
 * server.
 */
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { CountTokensRequest, describeParseError, MessagesRequest } from "./request.js"
import type { DefaultReply, Fault, Meter, ModelMeter, Reply, Script } from "./script.js"
import { emptyMeter, ScriptFromJson } from "./script.js"
import * as Tokens from "./tokens.js"
import * as Wire from "./wire.js"

export interface Options {
  readonly port?: number | undefined
  readonly defaultReply?: DefaultReply | undefined
}

export interface Handle {
  readonly url: string
  readonly port: number
  readonly script: (...items: ReadonlyArray<Script>) => Effect.Effect<void>
  readonly pending: Effect.Effect<number>
  readonly meter: Effect.Effect<Meter>
  readonly reset: Effect.Effect<void>
}

interface State {
  readonly seq: number
  readonly queue: ReadonlyArray<Script>
  readonly meter: Meter
}

const initial: State = { seq: 0, queue: [], meter: emptyMeter }

const zeroModel: ModelMeter = { input: 0, output: 0, cacheWrite: 0, cacheRead: 0, calls: 0 }

const bill = (meter: Meter, model: string, usage: Wire.Usage): Meter => {
  const previous = meter.byModel[model] ?? zeroModel
  return {
    ...meter,
    billedCalls: meter.billedCalls + 1,
    byModel: {
      ...meter.byModel,
      [model]: {
        input: previous.input + usage.input_tokens,
        output: previous.output + usage.output_tokens,
        cacheWrite: previous.cacheWrite + usage.cache_creation_input_tokens,
        cacheRead: previous.cacheRead + usage.cache_read_input_tokens,
        calls: previous.calls + 1
      }
    }
  }
}

const pad = (n: number): string => String(n).padStart(6, "0")

// ---------------------------------------------------------------------------------------------------
// node:http as Effects

const readBody = (req: Http.IncomingMessage): Effect.Effect<string, Error> =>
  Effect.async((resume) => {
    const chunks: Array<Buffer> = []
    const onData = (chunk: Buffer) => chunks.push(chunk)
    const onEnd = () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    const onError = (error: Error) => resume(Effect.fail(error))
    req.on("data", onData)
    req.once("end", onEnd)
    req.once("error", onError)
    return Effect.sync(() => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
    })
  })

/** Succeeds when the client goes away before the response was written in full. */
const clientGone = (res: Http.ServerResponse): Effect.Effect<void> =>
  Effect.async((resume) => {
    const onClose = () => {
      if (!res.writableFinished) resume(Effect.void)
    }
    res.on("close", onClose)
    return Effect.sync(() => res.off("close", onClose))
  })

/** Ends the response; succeeds once it has been handed to the OS in full. */
const end = (res: Http.ServerResponse, body: string): Effect.Effect<void> =>
  Effect.async((resume) => {
    res.end(body, () => resume(Effect.void))
  })

const sendJson = (
  res: Http.ServerResponse,
  status: number,
  body: unknown,
  headers: Http.OutgoingHttpHeaders
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const payload = JSON.stringify(body)
    // Node knows no reason phrase for the API's 529.
    res.writeHead(status, Http.STATUS_CODES[status] ?? (status === 529 ? "Overloaded" : "Unknown"), {
      ...headers,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(payload)
    })
    return end(res, payload)
  })

const sseHeaders = (requestId: string): Http.OutgoingHttpHeaders => ({
  "request-id": requestId,
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache"
})

/** Sends `200` headers (and `prefix`), then ends the connection mid-body. */
const cutAfterHeaders = (
  res: Http.ServerResponse,
  headers: Http.OutgoingHttpHeaders,
  prefix: string
): Effect.Effect<void> =>
  Effect.async((resume) => {
    res.writeHead(200, headers)
    if (prefix.length > 0) res.write(prefix)
    else res.flushHeaders()
    const socket = res.socket
    if (socket === null) return resume(Effect.void)
    // `end` flushes what was written, then FIN: the client has read the headers when the body breaks.
    socket.end(() => {
      socket.destroy()
      resume(Effect.void)
    })
  })

// ---------------------------------------------------------------------------------------------------

export const make = (options: Options): Effect.Effect<Handle, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const defaultReply = options.defaultReply ?? "echo"
    const state = yield* Ref.make(initial)
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    // Delays (slow replies) are real time even under a `TestClock`: the client's timers are.
    const liveClock = Clock.make()

    const nextSeq = Ref.modify(state, (s): [number, State] => [s.seq + 1, { ...s, seq: s.seq + 1 }])
    const takeScript = Ref.modify(state, (s): [Option.Option<Script>, State] => {
      const [head, ...rest] = s.queue
      return head === undefined ? [Option.none(), s] : [Option.some(head), { ...s, queue: rest }]
    })
    const updateMeter = (f: (meter: Meter) => Meter) => Ref.update(state, (s) => ({ ...s, meter: f(s.meter) }))
    const script = (...items: ReadonlyArray<Script>) =>
      Ref.update(state, (s) => ({ ...s, queue: [...s.queue, ...items] }))
    const pending = Effect.map(Ref.get(state), (s) => s.queue.length)
    const meter = Effect.map(Ref.get(state), (s) => s.meter)
    const reset = Ref.update(state, (s) => ({ ...s, queue: [], meter: emptyMeter }))

    const handle = (req: Http.IncomingMessage, res: Http.ServerResponse): Effect.Effect<void> =>
      Effect.gen(function*() {
        const seq = yield* nextSeq
        const requestId = `req_standin_${pad(seq)}`
        const base = { "request-id": requestId }
        const sendError = (
          status: number,
          type: string,
          message: string,
          extra: { readonly headers?: Http.OutgoingHttpHeaders; readonly errorCode?: string | undefined } = {}
        ) =>
          sendJson(res, status, Wire.errorBody({ type, message, requestId, errorCode: extra.errorCode }), {
            ...base,
            ...extra.headers
          })

        const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname
        const route = `${req.method ?? "GET"} ${path}`
        const raw = yield* readBody(req)
        const parsed = Either.try((): unknown => JSON.parse(raw))

        if (route === "GET /_meter") return yield* sendJson(res, 200, yield* meter, base)
        if (route === "POST /_reset") {
          yield* reset
          return yield* sendJson(res, 200, { ok: true }, base)
        }
        if (route === "POST /_script") {
          const decoded = Schema.decodeUnknownEither(ScriptFromJson)(raw)
          if (Either.isLeft(decoded)) {
            return yield* sendError(400, "invalid_request_error", describeParseError(decoded.left))
          }
          yield* script(...Arr.ensure(decoded.right))
          return yield* sendJson(res, 200, { pending: yield* pending }, base)
        }
        const isMessages = route === "POST /v1/messages"
        if (!isMessages && route !== "POST /v1/messages/count_tokens") {
          return yield* sendError(404, "not_found_error", `Not found: ${route}`)
        }

        if (isMessages) {
          yield* updateMeter((m) => ({
            ...m,
            calls: m.calls + 1,
            requests: [...m.requests, Either.getOrElse(parsed, () => raw)]
          }))
        }

        // Validation, in the real API's order: authentication, then the headers, then the body.
        const apiKey = req.headers["x-api-key"]
        const authorization = req.headers["authorization"]
        if (!apiKey && !authorization) {
          return yield* sendError(401, "authentication_error", "x-api-key header is required")
        }
        if (!req.headers["anthropic-version"]) {
          return yield* sendError(400, "invalid_request_error", "anthropic-version: header is required")
        }
        if (Either.isLeft(parsed)) {
          return yield* sendError(400, "invalid_request_error", "There was an error parsing the body as JSON")
        }

        if (!isMessages) {
          const decoded = Schema.decodeUnknownEither(CountTokensRequest)(parsed.right)
          return yield* Either.isLeft(decoded)
            ? sendError(400, "invalid_request_error", describeParseError(decoded.left))
            : sendJson(res, 200, { input_tokens: Tokens.promptTokens(decoded.right) }, base)
        }

        const decoded = Schema.decodeUnknownEither(MessagesRequest)(parsed.right)
        if (Either.isLeft(decoded)) {
          return yield* sendError(400, "invalid_request_error", describeParseError(decoded.left))
        }
        const request = decoded.right
        const stream = request.stream === true
        const ids: Wire.Ids = { message: `msg_standin_${pad(seq)}`, toolUse: `toolu_standin_${pad(seq)}` }
        const render = (reply: Reply | undefined) =>
          Wire.render(reply ?? Wire.resolveDefault(defaultReply, request), request, ids)

        const answer = (item: Script): Effect.Effect<void> =>
          Effect.gen(function*() {
            if (!("fault" in item)) {
              const rendered = render(item)
              yield* stream
                ? Effect.suspend(() => {
                  res.writeHead(200, sseHeaders(requestId))
                  return end(res, Wire.streamEvents(rendered).map(Wire.encodeEvent).join(""))
                })
                : sendJson(res, 200, Wire.messageBody(rendered), base)
              // Only a reply written in full is billed.
              return yield* updateMeter((m) => bill(m, request.model, rendered.usage))
            }
            return yield* fault(item)
          })

        const fault = (item: Fault): Effect.Effect<void> => {
          switch (item.fault) {
            case "status": {
              const type = item.errorType ?? Wire.errorTypeForStatus(item.status)
              const headers: Http.OutgoingHttpHeaders = {
                ...(item.retryAfter === undefined ? {} : { "retry-after": String(item.retryAfter) }),
                ...(item.retryAfterMs === undefined ? {} : { "retry-after-ms": String(item.retryAfterMs) }),
                ...(item.shouldRetry === undefined ? {} : { "x-should-retry": String(item.shouldRetry) })
              }
              return sendError(item.status, type, item.message ?? Wire.defaultErrorMessage(type), {
                headers,
                errorCode: item.errorCode
              })
            }
            case "reset":
              // An RST: the client sees ECONNRESET before any response byte.
              return Effect.sync(() => req.socket.resetAndDestroy())
            case "cutAfterHeaders": {
              if (!stream) {
                return cutAfterHeaders(res, { ...base, "content-type": "application/json" }, "")
              }
              const events = Wire.streamEvents(render(item.reply))
              const prefix = events.slice(0, item.afterEvents ?? 0).map(Wire.encodeEvent).join("")
              return cutAfterHeaders(res, sseHeaders(requestId), prefix)
            }
            case "slow":
              return Effect.sleep(item.delayMs).pipe(Effect.withClock(liveClock), Effect.zipRight(answer(item.then)))
            case "streamError": {
              const message = item.message ?? Wire.defaultErrorMessage(item.errorType)
              if (!stream) {
                return sendError(Wire.statusForErrorType(item.errorType), item.errorType, message)
              }
              const events = Wire.streamEvents(render(item.reply)).slice(0, item.afterEvents ?? 3)
              const error: Wire.SseEvent = {
                event: "error",
                data: { type: "error", error: { type: item.errorType, message }, request_id: requestId }
              }
              return Effect.suspend(() => {
                res.writeHead(200, sseHeaders(requestId))
                return end(res, [...events, error].map(Wire.encodeEvent).join(""))
              })
            }
          }
        }

        const next = yield* takeScript
        return yield* answer(Option.getOrElse(next, () => Wire.resolveDefault(defaultReply, request)))
      }).pipe(
        Effect.raceFirst(clientGone(res)),
        Effect.catchAllCause((cause) =>
          Effect.sync(() => {
            // A bug in the stand-in, or a broken request stream: answer 500 if still possible.
            if (!res.headersSent && !res.destroyed) {
              const payload = JSON.stringify({
                type: "error",
                error: { type: "api_error", message: `stand-in failure: ${String(cause)}` }
              })
              res.writeHead(500, { "content-type": "application/json" }).end(payload)
            } else {
              res.destroy()
            }
          })
        )
      )

    const server = Http.createServer((req, res) => {
      run(handle(req, res))
    })

    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        const onError = (error: Error) => {
          server.off("listening", onListening)
          resume(Effect.fail(error))
        }
        const onListening = () => {
          server.off("error", onError)
          resume(Effect.void)
        }
        server.once("error", onError)
        server.once("listening", onListening)
        server.listen(options.port ?? 0, "127.0.0.1")
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )

    const address = server.address()
    const port = address !== null && typeof address === "object" ? address.port : (options.port ?? 0)
    return { url: `http://127.0.0.1:${port}`, port, script, pending, meter, reset }
  })
