/**
 * The classifier against real errors from the real libraries: the Anthropic SDK talking to a local HTTP
 * server, better-sqlite3 and @effect/sql on a temp file, Node's fetch and sockets, Effect Schema. Only the
 * Postgres errors are hand-built (no server here). EAI_AGAIN has no row: only getaddrinfo raises it (a
 * resolver that timed out or failed), and this machine's resolver answers a name under `.invalid` with
 * ENOTFOUND; pointing `dns.lookup` at another resolver would mean changing /etc/resolv.conf.
 */
import Anthropic from "@anthropic-ai/sdk"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import * as Layer from "effect/Layer"
import * as Engine from "../src/Engine.js"
import * as EventStore from "../src/EventStore.js"
import * as Failure from "../src/Failure.js"
import * as Pipeline from "../src/Pipeline.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Step from "../src/Step.js"
import { withTime } from "./fixtures/clock.js"

// ---------------------------------------------------------------------------------------------------------
// A tiny Anthropic API: the scenario is chosen by the request's `x-scenario` header
// ---------------------------------------------------------------------------------------------------------

const apiError = (type: string, message: string) => JSON.stringify({ type: "error", error: { type, message } })

const json = (
  status: number,
  body: string,
  headers: Record<string, string> = {}
) =>
(res: http.ServerResponse) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(body)
}

const scenarios: Record<string, (res: http.ServerResponse) => void> = {
  "rate-limited": json(429, apiError("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), {
    "retry-after": "7"
  }),
  "overloaded": json(529, apiError("overloaded_error", "Overloaded")),
  "api-error": json(500, apiError("api_error", "Internal server error")),
  "unavailable": (res) => {
    res.writeHead(503, { "content-type": "text/plain" })
    res.end("upstream connect error")
  },
  "unavailable-until": (res) => {
    res.writeHead(503, { "content-type": "text/plain", "retry-after": new Date(Date.now() + 120_000).toUTCString() })
    res.end("maintenance")
  },
  "invalid-request": json(400, apiError("invalid_request_error", "max_tokens: Field required")),
  "credit-balance": json(
    400,
    apiError(
      "invalid_request_error",
      "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
    )
  ),
  "unauthorized": json(401, apiError("authentication_error", "invalid x-api-key")),
  "spend-limit": json(
    429,
    apiError("rate_limit_error", "You have reached your workspace's monthly spend limit. Raise it in the Console."),
    { "retry-after": "60" }
  ),
  // Statuses a proxy or gateway answers with, in plain text (no error.type): the status decides.
  ...Object.fromEntries([408, 425, 502, 504, 507].map((status) => [`plain-${status}`, (res: http.ServerResponse) => {
    res.writeHead(status, { "content-type": "text/plain" })
    res.end("try later")
  }])),
  "permission": json(403, apiError("permission_error", "Your API key does not have permission to use the specified resource.")),
  "not-found": json(404, apiError("not_found_error", "model: claude-nope")),
  "too-large": json(413, apiError("request_too_large", "Request exceeds the maximum allowed number of bytes.")),
  "billing": json(402, apiError("billing_error", "Your account has a billing issue.")),
  "should-not-retry": json(503, apiError("api_error", "Internal server error"), { "x-should-retry": "false" }),
  "should-retry": json(400, apiError("invalid_request_error", "try again"), {
    "x-should-retry": "true",
    "retry-after": "2"
  }),
  "retry-after-ms": json(429, apiError("rate_limit_error", "slow down"), { "retry-after-ms": "1500", "retry-after": "30" }),
  // Headers, a few bytes of the body, then the connection dies.
  "cut-after-headers": (res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
    res.write("{\"id\":\"msg_", () => res.socket?.destroy())
  },
  // An error status, then the connection dies before the body.
  "cut-error-body": (res) => {
    res.writeHead(500, { "content-type": "application/json", "content-length": "1000" })
    res.write("{", () => res.socket?.destroy())
  },
  "stream-error": (res) => {
    res.writeHead(200, { "content-type": "text/event-stream" })
    res.write(
      "event: message_start\ndata: " +
        JSON.stringify({
          type: "message_start",
          message: {
            id: "msg_1",
            type: "message",
            role: "assistant",
            content: [],
            model: "claude-test",
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 1, output_tokens: 1 }
          }
        }) + "\n\n"
    )
    res.end(`event: error\ndata: ${apiError("overloaded_error", "Overloaded")}\n\n`)
  },
  // Never answers; tells the test the request arrived.
  "hang": () => {
    const arrived = hangArrivals.shift()
    if (arrived !== undefined) arrived()
  }
}

const hangArrivals: Array<() => void> = []

const server = http.createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    const scenario = scenarios[String(req.headers["x-scenario"])]
    if (scenario !== undefined) scenario(res)
    else json(418, apiError("invalid_request_error", "no such scenario"))(res)
  })
})
/** A TCP server that resets every connection it accepts (RST, not FIN): the client reads ECONNRESET. */
const resetting = net.createServer((socket) => socket.resetAndDestroy())
/** A TCP server that closes every connection it accepts (FIN): a client that writes on reads EPIPE. */
const closing = net.createServer((socket) => socket.destroy())
let client: Anthropic
let closedPort: number
let resetPort: number
let closingPort: number
let hole: BlackHole
/** fetch to the black hole, started once in beforeAll: undici's connect timeout is 10 s, spent beside the other rows. */
let undiciConnectTimeout: Promise<unknown>
let tmp: string

interface BlackHole {
  readonly port: number
  readonly close: () => Promise<void>
}

/**
 * A port on 127.0.0.1 that never completes a connection, as a black-holed host: a listener (backlog 1) in a
 * worker thread whose event loop is blocked, so it never accepts. Once its accept queue holds the two
 * connections Linux allows it (backlog + 1), every further SYN is dropped and the client waits.
 */
const blackHole = async (): Promise<BlackHole> => {
  const gate = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(
    `const net = require("node:net")
    const { parentPort, workerData } = require("node:worker_threads")
    const server = net.createServer()
    server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
      parentPort.postMessage(server.address().port)
      Atomics.wait(workerData, 0, 0) // until close() below: no accept meanwhile
      server.close()
    })`,
    { eval: true, workerData: gate }
  )
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("message", resolve)
    worker.once("error", reject)
  })
  const fillers = await Promise.all([0, 1].map(() =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(socket))
      socket.on("error", reject)
    })
  ))
  return {
    port,
    close: async () => {
      for (const socket of fillers) socket.destroy()
      Atomics.store(gate, 0, 1)
      Atomics.notify(gate, 0)
      await worker.terminate()
    }
  }
}

/** A port that was just free: nothing listens on it. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  client = new Anthropic({ apiKey: "test", baseURL: `http://127.0.0.1:${port}`, maxRetries: 0 })
  closedPort = await freePort()
  await new Promise<void>((resolve) => resetting.listen(0, "127.0.0.1", resolve))
  resetPort = (resetting.address() as AddressInfo).port
  await new Promise<void>((resolve) => closing.listen(0, "127.0.0.1", resolve))
  closingPort = (closing.address() as AddressInfo).port
  hole = await blackHole()
  undiciConnectTimeout = rejection(fetch(`http://127.0.0.1:${hole.port}/`))
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-classifier-"))
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await new Promise<void>((resolve) => resetting.close(() => resolve()))
  await new Promise<void>((resolve) => closing.close(() => resolve()))
  await undiciConnectTimeout
  await hole.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const body = { model: "claude-test", max_tokens: 10, messages: [{ role: "user" as const, content: "hi" }] }

/** The rejection of a promise that must reject. */
const rejection = (promise: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(promise).then(
    () => Promise.reject(new Error("expected a failure")),
    (error: unknown) => error
  )

const sdkError = (scenario: string) => rejection(client.messages.create(body, { headers: { "x-scenario": scenario } }))

const sdkStreamError = (scenario: string) =>
  rejection((async () => {
    const stream = await client.messages.create({ ...body, stream: true }, { headers: { "x-scenario": scenario } })
    for await (const _event of stream) {
      // consume until the error
    }
  })())

// ---------------------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------------------

const freshDb = (name: string) => {
  const filename = path.join(tmp, `${name}.db`)
  const db = new Database(filename)
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
  db.prepare("INSERT INTO t (name) VALUES (?)").run("a")
  return { db, filename }
}

const sqliteError = (name: string, statement: string) => {
  const { db } = freshDb(name)
  try {
    db.prepare(statement).run()
    return Promise.reject(new Error("expected a failure"))
  } catch (error) {
    return Promise.resolve(error)
  } finally {
    db.close()
  }
}

/** A second connection (no busy timeout) writes while the first holds the write lock. */
const sqliteBusy = () => {
  const { db: holder, filename } = freshDb("busy")
  const other = new Database(filename, { timeout: 0 })
  holder.exec("BEGIN IMMEDIATE")
  try {
    other.prepare("INSERT INTO t (name) VALUES ('b')").run()
    return Promise.reject(new Error("expected a failure"))
  } catch (error) {
    return Promise.resolve(error)
  } finally {
    holder.exec("ROLLBACK")
    holder.close()
    other.close()
  }
}

/** The error @effect/sql's SQLite client fails with (a `SqlError` with the driver's error in `cause`). */
const effectSqlError = (name: string, statement: string, options?: { readonly holdWriteLock?: boolean }) => {
  const { db: holder, filename } = freshDb(name)
  if (options?.holdWriteLock) holder.exec("BEGIN IMMEDIATE")
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe("PRAGMA busy_timeout = 0")
    return yield* Effect.flip(sql.unsafe(statement))
  }).pipe(
    Effect.provide(SqliteClient.layer({ filename, disableWAL: true })),
    Effect.ensuring(Effect.sync(() => holder.close())),
    Effect.runPromise
  )
}

// ---------------------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------------------

interface Row {
  readonly name: string
  readonly make: () => Promise<unknown>
  /** What the library raised: the class name (`error.name`). */
  readonly raised?: string
  readonly tag: "Transient" | "Deterministic"
  readonly rule: string
  /** Text the failure's reason must contain (what made the verdict: a status, a code). */
  readonly says?: string
  /** Expected `retryAfter` in millis, or a [min, max] range for HTTP dates. */
  readonly retryAfter?: number | readonly [number, number]
}

const pgError = (code: string, message: string) =>
  new SqlError({ cause: Object.assign(new Error(message), { code, severity: "ERROR" }), message: "Failed to execute" })

const rows: ReadonlyArray<Row> = [
  // Anthropic SDK, real HTTP
  {
    name: "SDK 429 rate_limit_error with retry-after: 7",
    make: () => sdkError("rate-limited"),
    raised: "RateLimitError",
    tag: "Transient",
    rule: "anthropic-error-type",
    retryAfter: 7000
  },
  {
    name: "SDK 529 overloaded_error",
    make: () => sdkError("overloaded"),
    raised: "OverloadedError",
    tag: "Transient",
    rule: "anthropic-error-type"
  },
  {
    name: "SDK 500 api_error",
    make: () => sdkError("api-error"),
    raised: "InternalServerError",
    tag: "Transient",
    rule: "anthropic-error-type"
  },
  {
    name: "SDK 503 with a non-JSON body (no error.type): decided by the status",
    make: () => sdkError("unavailable"),
    raised: "ServiceUnavailableError",
    tag: "Transient",
    rule: "http-status"
  },
  {
    name: "SDK 503 with retry-after as an HTTP date two minutes ahead",
    make: () => sdkError("unavailable-until"),
    raised: "ServiceUnavailableError",
    tag: "Transient",
    rule: "http-status",
    retryAfter: [110_000, 120_000]
  },
  {
    name: "SDK 400 invalid_request_error",
    make: () => sdkError("invalid-request"),
    raised: "BadRequestError",
    tag: "Deterministic",
    rule: "anthropic-error-type"
  },
  {
    name: "SDK 400 credit balance too low",
    make: () => sdkError("credit-balance"),
    raised: "BadRequestError",
    tag: "Deterministic",
    rule: "spend-limit"
  },
  {
    name: "SDK 401 authentication_error",
    make: () => sdkError("unauthorized"),
    raised: "AuthenticationError",
    tag: "Deterministic",
    rule: "anthropic-error-type"
  },
  {
    name: "SDK 429 saying the spend limit is reached (waiting does not refill an account)",
    make: () => sdkError("spend-limit"),
    raised: "RateLimitError",
    tag: "Deterministic",
    rule: "spend-limit"
  },
  // The table's statuses. 502 and 504 are 5xx, so without their entries they would still be Transient, by
  // the rule for other 5xx: `rule` tells the two apart.
  ...([408, 425, 502, 504] as const).map((status): Row => ({
    name: `SDK ${status} with a plain-text body: decided by the status`,
    make: () => sdkError(`plain-${status}`),
    says: `HTTP ${status}`,
    tag: "Transient",
    rule: "http-status"
  })),
  {
    name: "SDK 507 with a plain-text body: a 5xx outside the table is a server error, taken as transient",
    make: () => sdkError("plain-507"),
    raised: "InternalServerError",
    says: "HTTP 507",
    tag: "Transient",
    rule: "http-5xx"
  },
  ...([
    ["permission", "permission_error", "PermissionDeniedError"],
    ["not-found", "not_found_error", "NotFoundError"],
    ["too-large", "request_too_large", undefined],
    ["billing", "billing_error", undefined]
  ] as const).map(([scenario, type, raised]): Row => ({
    name: `SDK ${type}`,
    make: () => sdkError(scenario),
    says: type,
    ...(raised !== undefined ? { raised } : {}),
    tag: "Deterministic",
    rule: "anthropic-error-type"
  })),
  {
    name: "SDK request timed out (the client's own timeout, against a server that never answers)",
    make: () =>
      rejection(
        new Anthropic({ apiKey: "test", baseURL: client.baseURL, maxRetries: 0, timeout: 200 }).messages.create(body, {
          headers: { "x-scenario": "hang" }
        })
      ),
    raised: "APIConnectionTimeoutError",
    tag: "Transient",
    rule: "anthropic-connection"
  },
  {
    name: "SDK 503 with x-should-retry: false",
    make: () => sdkError("should-not-retry"),
    raised: "ServiceUnavailableError",
    tag: "Deterministic",
    rule: "x-should-retry"
  },
  {
    name: "SDK 400 with x-should-retry: true (and retry-after: 2)",
    make: () => sdkError("should-retry"),
    raised: "BadRequestError",
    tag: "Transient",
    rule: "x-should-retry",
    retryAfter: 2000
  },
  {
    name: "SDK 429 with retry-after-ms: 1500 beside retry-after: 30 (the millis win)",
    make: () => sdkError("retry-after-ms"),
    raised: "RateLimitError",
    tag: "Transient",
    rule: "anthropic-error-type",
    retryAfter: 1500
  },
  {
    name: "SDK connection refused (a closed port)",
    make: () =>
      rejection(
        new Anthropic({ apiKey: "test", baseURL: `http://127.0.0.1:${closedPort}`, maxRetries: 0 }).messages.create(body)
      ),
    raised: "APIConnectionError",
    tag: "Transient",
    rule: "anthropic-connection"
  },
  {
    name: "SDK response cut after its headers: the SDK lets undici's TypeError: terminated through",
    make: () => sdkError("cut-after-headers"),
    raised: "TypeError",
    tag: "Transient",
    rule: "network-code"
  },
  {
    name: "SDK error status cut before its body: the SDK raises the status error with message 'terminated'",
    make: () => sdkError("cut-error-body"),
    raised: "InternalServerError",
    tag: "Transient",
    rule: "http-status"
  },
  {
    name: "SDK stream with an overloaded_error event mid-stream (no HTTP status)",
    make: () => sdkStreamError("stream-error"),
    raised: "APIError",
    tag: "Transient",
    rule: "anthropic-error-type"
  },
  {
    name: "SDK request aborted by the caller",
    make: () => {
      const controller = new AbortController()
      const arrived = new Promise<void>((resolve) => hangArrivals.push(resolve))
      const pending = rejection(
        client.messages.create(body, { signal: controller.signal, headers: { "x-scenario": "hang" } })
      )
      return arrived.then(() => {
        controller.abort()
        return pending
      })
    },
    raised: "APIUserAbortError",
    tag: "Deterministic",
    rule: "cancelled"
  },
  // fetch
  {
    name: "fetch to a closed port: TypeError: fetch failed, cause ECONNREFUSED",
    make: () => rejection(fetch(`http://127.0.0.1:${closedPort}/`)),
    raised: "TypeError",
    tag: "Transient",
    rule: "network-code"
  },
  {
    name: "fetch aborted by an AbortController",
    make: () => {
      const controller = new AbortController()
      controller.abort()
      return rejection(fetch(`http://127.0.0.1:${closedPort}/`, { signal: controller.signal }))
    },
    raised: "AbortError",
    tag: "Deterministic",
    rule: "cancelled"
  },
  {
    name: "node:http to a server that resets the connection: ECONNRESET",
    make: () =>
      new Promise((resolve) => {
        http.get(`http://127.0.0.1:${resetPort}/`, () => resolve(new Error("expected a failure"))).on("error", resolve)
      }),
    says: "ECONNRESET",
    tag: "Transient",
    rule: "network-code"
  },
  {
    name: "node:net writing on after the server closed the connection: EPIPE",
    make: () =>
      new Promise((resolve) => {
        // Half-open, so the socket stays writable after the server's FIN: the first write draws an RST,
        // the next one fails.
        const socket = net.connect({ port: closingPort, host: "127.0.0.1", allowHalfOpen: true })
        const write = (): void => void socket.write("x", (error) => error === undefined || error === null ? write() : undefined)
        socket.on("end", write)
        socket.on("error", resolve)
      }),
    says: "EPIPE",
    tag: "Transient",
    rule: "network-code"
  },
  {
    name: "node:net to a name whose first address never answers: Node's connection attempt timeout, ETIMEDOUT",
    make: () =>
      new Promise((resolve) => {
        // The name resolves to the black hole, then to an address where nothing listens: Node gives the
        // first attempt 100 ms, then tries the next, and reports both (AggregateError, code ETIMEDOUT).
        const socket = net.connect({
          host: "black-hole.test",
          port: hole.port,
          autoSelectFamily: true,
          autoSelectFamilyAttemptTimeout: 100,
          lookup: (_host, _options, callback) =>
            callback(null, [{ address: "127.0.0.1", family: 4 }, { address: "127.0.0.2", family: 4 }])
        })
        socket.on("connect", () => {
          socket.destroy()
          resolve(new Error("expected a failure"))
        })
        socket.on("error", resolve)
      }),
    raised: "AggregateError",
    says: "network error ETIMEDOUT (connect ETIMEDOUT 127.0.0.1:",
    tag: "Transient",
    rule: "network-code"
  },
  {
    name: "fetch to a host that never accepts: undici's connect timeout (10 s), UND_ERR_CONNECT_TIMEOUT under fetch failed",
    make: () => undiciConnectTimeout,
    raised: "TypeError",
    says: "UND_ERR_CONNECT_TIMEOUT",
    tag: "Transient",
    rule: "network-code"
  },
  // undici's headers and body timeouts (UND_ERR_HEADERS_TIMEOUT, UND_ERR_BODY_TIMEOUT) are 300 s in Node's
  // fetch and set only through an undici Agent, a dependency this package does not have: no row. A timeout
  // of the caller's on a server that never answers is the row below.
  {
    name: "fetch with AbortSignal.timeout to a server that never answers: TimeoutError",
    make: () =>
      rejection(fetch(`${client.baseURL}/v1/messages`, {
        method: "POST",
        headers: { "x-scenario": "hang" },
        body: "{}",
        signal: AbortSignal.timeout(100)
      })),
    raised: "TimeoutError",
    says: "TimeoutError",
    tag: "Transient",
    rule: "timeout"
  },
  // SQLite, better-sqlite3
  {
    name: "SQLite no such column",
    make: () => sqliteError("no-column", "SELECT nope FROM t"),
    raised: "SqliteError",
    tag: "Deterministic",
    rule: "sqlite-code"
  },
  {
    name: "SQLite no such table",
    make: () => sqliteError("no-table", "SELECT * FROM nope"),
    raised: "SqliteError",
    tag: "Deterministic",
    rule: "sqlite-code"
  },
  {
    name: "SQLite UNIQUE constraint",
    make: () => sqliteError("unique", "INSERT INTO t (name) VALUES ('a')"),
    raised: "SqliteError",
    tag: "Deterministic",
    rule: "sqlite-code"
  },
  {
    name: "SQLite SQLITE_BUSY from a second connection while the first holds the write lock",
    make: sqliteBusy,
    raised: "SqliteError",
    tag: "Transient",
    rule: "sqlite-code"
  },
  // SQLite through @effect/sql
  {
    name: "@effect/sql SqlError wrapping no such column",
    make: () => effectSqlError("sql-no-column", "SELECT nope FROM t"),
    raised: "SqlError",
    tag: "Deterministic",
    rule: "sqlite-code"
  },
  {
    name: "@effect/sql SqlError wrapping SQLITE_BUSY",
    make: () => effectSqlError("sql-busy", "INSERT INTO t (name) VALUES ('b')", { holdWriteLock: true }),
    raised: "SqlError",
    tag: "Transient",
    rule: "sqlite-code"
  },
  // Postgres: hand-built look-alikes of `pg` errors, inside a real SqlError
  ...([
    ["40001", "could not serialize access due to concurrent update", "Transient"],
    ["40P01", "deadlock detected", "Transient"],
    ["55P03", "could not obtain lock on row", "Transient"],
    ["57P01", "terminating connection due to administrator command", "Transient"],
    ["57P03", "the database system is starting up", "Transient"],
    ["53300", "sorry, too many clients already", "Transient"],
    ["08006", "connection failure", "Transient"],
    ["42703", "column \"nope\" does not exist", "Deterministic"],
    ["42P01", "relation \"nope\" does not exist", "Deterministic"],
    ["23505", "duplicate key value violates unique constraint", "Deterministic"],
    ["22P02", "invalid input syntax for type integer", "Deterministic"]
  ] as const).map(([code, message, tag]): Row => ({
    name: `Postgres ${code} (${message})`,
    make: () => Promise.resolve(pgError(code, message)),
    raised: "SqlError",
    tag,
    rule: "postgres-code"
  })),
  // Effect
  {
    name: "Schema ParseError",
    make: () =>
      Effect.runPromise(Effect.flip(Schema.decodeUnknown(Schema.Struct({ n: Schema.Number }))({ n: "one" }))),
    raised: "ParseError",
    tag: "Deterministic",
    rule: "schema"
  },
  {
    name: "Effect interruption",
    make: () => Promise.resolve(new Cause.InterruptedException()),
    raised: "InterruptedException",
    tag: "Deterministic",
    rule: "cancelled"
  },
  // Plain HTTP-ish errors from other clients
  {
    name: "an error with response.status 409",
    make: () => Promise.resolve(Object.assign(new Error("conflict"), { response: { status: 409 } })),
    tag: "Transient",
    rule: "http-status"
  },
  {
    name: "an error with statusCode 404",
    make: () => Promise.resolve(Object.assign(new Error("not found"), { statusCode: 404 })),
    tag: "Deterministic",
    rule: "http-status"
  },
  {
    name: "an error with status 429 and a plain-record retry-after header",
    make: () => Promise.resolve(Object.assign(new Error("slow down"), { status: 429, headers: { "Retry-After": "3" } })),
    tag: "Transient",
    rule: "http-status",
    retryAfter: 3000
  },
  // Unknown
  {
    name: "an unknown Error",
    make: () => Promise.resolve(new Error("weird")),
    raised: "Error",
    tag: "Deterministic",
    rule: "unknown"
  },
  {
    name: "a thrown string",
    make: () => Promise.resolve("weird"),
    tag: "Deterministic",
    rule: "unknown"
  }
]

const nameOf = (u: unknown): string | undefined =>
  u instanceof Error ? u.name : typeof u === "object" && u !== null && "_tag" in u ? String(u._tag) : undefined

describe("Failure.classify", () => {
  for (const row of rows) {
    it(`${row.name} → ${row.tag} (rule: ${row.rule})`, async () => {
      const error = await row.make()
      if (row.raised !== undefined) expect(nameOf(error)).toBe(row.raised)
      const failure = Failure.classify(error)
      expect(failure._tag).toBe(row.tag)
      expect(failure.rule).toBe(row.rule)
      expect(failure.reason).toContain(`(rule: ${row.rule})`)
      if (row.says !== undefined) expect(failure.reason).toContain(row.says)
      expect(failure.cause).toBeInstanceOf(Failure.ErrorInfo)
      const retryAfter = failure._tag === "Transient" && failure.retryAfter !== undefined
        ? Duration.toMillis(failure.retryAfter)
        : undefined
      if (row.retryAfter === undefined) expect(retryAfter).toBeUndefined()
      else if (typeof row.retryAfter === "number") expect(retryAfter).toBe(row.retryAfter)
      else {
        expect(retryAfter).toBeGreaterThanOrEqual(row.retryAfter[0])
        expect(retryAfter).toBeLessThanOrEqual(row.retryAfter[1])
      }
      // A classified failure survives the log: it encodes and decodes to an equal value.
      const decoded = Schema.decodeUnknownSync(Failure.Failure)(Schema.encodeSync(Failure.Failure)(failure))
      expect(decoded).toStrictEqual(failure)
    })
  }

  it("a failure already classified is returned as is", () => {
    const failure = Failure.transient("flaky", { retryAfter: "1 second" })
    expect(Failure.classify(failure)).toBe(failure)
    const deterministic = Failure.deterministic("no")
    expect(Failure.classify(deterministic)).toBe(deterministic)
  })

  it("an encoded failure (a look-alike with the same _tag) is rebuilt as a real one, keeping its fields", () => {
    const encoded = Schema.encodeSync(Failure.Failure)(
      Failure.transient("flaky", { retryAfter: "500 millis", rule: "mine", cause: new Error("boom") })
    )
    const failure = Failure.classify(encoded)
    expect(Failure.isTransient(failure)).toBe(true)
    expect(failure.reason).toBe("flaky")
    expect(failure.rule).toBe("mine")
    expect(failure.cause?.message).toBe("boom")
    expect(failure._tag === "Transient" && failure.retryAfter !== undefined && Duration.toMillis(failure.retryAfter))
      .toBe(500)
  })

  it("an unknown error's reason tells the user how to make it retryable", () => {
    expect(Failure.classify(new Error("weird")).reason).toMatch(
      /unknown errors are not retried; classify it in the step \(`classify`\) if it can heal/
    )
  })

  it("reasons are human: they name the status and what it means", async () => {
    const failure = Failure.classify(await sdkError("unavailable"))
    expect(failure.reason).toBe("HTTP 503 Service Unavailable is transient (rule: http-status)")
  })
})

describe("failure fingerprints", () => {
  it.prop(
    "the same error with other literals (numbers, quoted values, timestamps, ids) has one fingerprint",
    {
      n: fc.integer({ min: 0, max: 1_000_000 }),
      value: fc.string({ maxLength: 12 }).map((s) => s.replace(/'/g, "''")),
      time: fc.date({ min: new Date("2000-01-01"), max: new Date("2099-12-31"), noInvalidDate: true }),
      id: fc.uuid()
    },
    ({ id, n, time, value }) => {
      const error = (v: string, k: number, t: Date, u: string) =>
        Object.assign(new Error(`UNIQUE constraint failed: orders.id (value '${v}' for row ${k} at ${t.toISOString()}, request ${u})`), {
          code: "SQLITE_CONSTRAINT_UNIQUE"
        })
      const print = (e: unknown) => Failure.fingerprint(Failure.classify(e))
      expect(print(error(value, n, time, id))).toBe(print(error("x", 1, new Date(0), "00000000-0000-4000-8000-000000000000")))
    }
  )

  it("different SQLite errors inside @effect/sql's SqlError never share one; fetch failed is fingerprinted by its cause's code", async () => {
    const wrapped = (message: string) =>
      new SqlError({ message: "Failed to prepare statement", cause: Object.assign(new Error(message), { name: "SqliteError", code: "SQLITE_ERROR" }) })
    const prints = ["no such column: a", "no such column: b", "no such table: a", "table t has no column named a"]
      .map((m) => Failure.fingerprint(Failure.classify(wrapped(m))))
    expect(new Set(prints).size).toBe(4)
    const refused = Failure.classify(await rejection(fetch(`http://127.0.0.1:${closedPort}/`)))
    expect(refused.cause).toMatchObject({ code: "ECONNREFUSED" })
    expect(Failure.fingerprint(refused)).toContain("|ECONNREFUSED|")
  })
})

describe("a step's own classify", () => {
  const EngineMemory = Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory))
  const quick = RetryPolicy.exponential({ base: "1 second", maxDelay: "1 second", maxAttempts: 3, maxElapsed: "1 minute", jitter: 0 })

  /** A one-step pipeline whose step fails with `errors[attempt - 1]` (then succeeds), classified by `classify`. */
  const pipelineOf = (errors: ReadonlyArray<unknown>, classify?: (error: unknown) => Failure.Failure) => {
    let attempts = 0
    const step = Step.make({
      name: "call",
      input: Schema.String,
      output: Schema.String,
      retry: quick,
      ...(classify !== undefined ? { classify } : {}),
      run: (s) =>
        Effect.suspend(() => {
          attempts += 1
          const error = errors[attempts - 1]
          return error === undefined ? Effect.succeed(s) : Effect.fail(error)
        })
    })
    const pipeline = Pipeline.make({ name: "classified", version: 1, input: Schema.String, output: Schema.String, run: step })
    return { pipeline, attempts: () => attempts }
  }

  const failedAttempts = (key: string) =>
    Effect.gen(function*() {
      const [run] = yield* Engine.runs({ key })
      return (yield* Engine.events(run!.runId)).flatMap((e) => (e._tag === "StepAttemptFailed" ? [e.failure] : []))
    })

  it.effect("overrides the classifier: an error it would not retry is retried when the step says it heals", () =>
    Effect.gen(function*() {
      const locked = Object.assign(new Error("resource locked by a batch job"), { code: "E_LOCKED" })
      // Unknown to the built-in rules: Deterministic, attempted once.
      const plain = pipelineOf([locked])
      expect(yield* Effect.flip(Engine.run(plain.pipeline, "a", { key: "plain" }))).toMatchObject({ _tag: "Deterministic", rule: "unknown" })
      expect(plain.attempts()).toBe(1)
      const healing = pipelineOf([locked, locked], (error) =>
        error instanceof Error && "code" in error && error.code === "E_LOCKED"
          ? Failure.transient("locked by a batch job", { rule: "batch-lock" })
          : Failure.classify(error))
      expect(yield* withTime(Engine.run(healing.pipeline, "a", { key: "healing" }))).toBe("a")
      expect(healing.attempts()).toBe(3)
      expect((yield* failedAttempts("healing")).map((f) => [f._tag, f.rule])).toEqual([
        ["Transient", "batch-lock"],
        ["Transient", "batch-lock"]
      ])
    }).pipe(Effect.provide(EngineMemory)))

  it.effect("overrides the classifier: an error it would retry stops the run at once when the step says it cannot heal", () =>
    Effect.gen(function*() {
      const unavailable = Object.assign(new Error("Service Unavailable"), { status: 503 })
      const plain = pipelineOf([unavailable])
      expect(yield* withTime(Engine.run(plain.pipeline, "b", { key: "plain" }))).toBe("b")
      expect(plain.attempts()).toBe(2)
      const strict = pipelineOf([unavailable, unavailable], () => Failure.deterministic("this endpoint never comes back", { rule: "mine" }))
      expect(yield* Effect.flip(Engine.run(strict.pipeline, "b", { key: "strict" }))).toMatchObject({ _tag: "Deterministic", rule: "mine" })
      expect(strict.attempts()).toBe(1)
    }).pipe(Effect.provide(EngineMemory)))
})
