/**
 * The classifier's rules: turn any thrown value into a verdict (transient or deterministic), with a human
 * reason naming the rule that fired. Plain data only, so `Failure.ts` can build its errors from it without
 * an import cycle.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"

/** What the classifier decided, and why. */
export interface Verdict {
  readonly kind: "transient" | "deterministic"
  /** A human reason that ends with `(rule: <rule>)`. */
  readonly reason: string
  /** The rule that fired: `explicit`, `x-should-retry`, `cancelled`, `spend-limit`, `anthropic-error-type`, … */
  readonly rule: string
  /** The server's hint, in milliseconds from now (transient verdicts only). */
  readonly retryAfterMs?: number
}

/** What a rule sees: the error, its cause chain (the error first), and the time for `retry-after` dates. */
interface Subject {
  readonly error: unknown
  readonly chain: ReadonlyArray<unknown>
  readonly now: number
}

type Rule = (subject: Subject) => Verdict | undefined

/** Classify any thrown value. `now` (epoch millis) resolves a `retry-after` given as an HTTP date. */
export const classify = (u: unknown, now: number = Date.now()): Verdict => {
  const subject: Subject = { error: u, chain: causeChain(u), now }
  for (const rule of rules) {
    const verdict = rule(subject)
    if (verdict !== undefined) return withRetryAfter(verdict, subject)
  }
  return unknown(subject)
}

// ---------------------------------------------------------------------------------------------------------
// Rules, in priority order
// ---------------------------------------------------------------------------------------------------------

/** 1a. An error already classified (by the step, or decoded from the log) keeps its classification. */
const alreadyTagged: Rule = ({ error }) => {
  const tag = get(error, "_tag")
  if (tag !== "Transient" && tag !== "Deterministic") return undefined
  const rule = str(get(error, "rule")) ?? "explicit"
  const reason = str(get(error, "reason")) ?? `already classified as ${tag} (rule: ${rule})`
  const retryAfterMs = tag === "Transient" ? durationMillis(get(error, "retryAfter")) : undefined
  return verdict(tag === "Transient" ? "transient" : "deterministic", reason, rule, retryAfterMs)
}

/** 1b. The server says whether to retry (`x-should-retry`, the header the Anthropic SDK obeys). */
const shouldRetryHeader: Rule = ({ error }) => {
  const value = header(error, "x-should-retry")?.trim().toLowerCase()
  if (value !== "true" && value !== "false") return undefined
  const status = httpStatus(error)
  const on = status !== undefined ? ` on HTTP ${status}` : ""
  return value === "true"
    ? verdict("transient", `the server asked for a retry (x-should-retry: true${on}) (rule: x-should-retry)`, "x-should-retry")
    : verdict(
      "deterministic",
      `the server asked not to retry (x-should-retry: false${on}) (rule: x-should-retry)`,
      "x-should-retry"
    )
}

/** 2. A cancellation the caller asked for is not a failure to retry (the engine handles it separately). */
const cancelled: Rule = ({ chain }) => {
  const found = chain.find((e) =>
    name(e) === "AbortError" || name(e) === "APIUserAbortError" ||
    Cause.isInterruptedException(e) || get(e, "_tag") === "InterruptedException"
  )
  return found === undefined ? undefined : verdict(
    "deterministic",
    `the caller cancelled (${label(found)}); a cancellation is never retried (rule: cancelled)`,
    "cancelled"
  )
}

/** 3a. A 429 or 400 saying the account's spend limit or credit is exhausted: waiting does not refill it. */
const spendLimit: Rule = ({ error }) => {
  const status = httpStatus(error)
  const type = anthropicType(error)
  const applies = status === 429 || status === 400 ||
    (status === undefined && (type === "rate_limit_error" || type === "invalid_request_error"))
  if (!applies) return undefined
  const text = [message(error), apiMessage(error)].join(" ")
  if (!/credit balance|spend(ing)? limit|usage limit|billing/i.test(text)) return undefined
  return verdict(
    "deterministic",
    `${status !== undefined ? `HTTP ${status}` : type} says the spend limit or credit balance is exhausted ` +
      `("${truncate(apiMessage(error) || message(error))}"); waiting does not refill an account (rule: spend-limit)`,
    "spend-limit"
  )
}

const ANTHROPIC_TRANSIENT_TYPES: ReadonlySet<string> = new Set([
  "rate_limit_error",
  "overloaded_error",
  "api_error",
  "timeout_error"
])
const ANTHROPIC_DETERMINISTIC_TYPES: ReadonlySet<string> = new Set([
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "request_too_large",
  "billing_error"
])

/**
 * 3b. Anthropic SDK errors, by the API's `error.type`. Mid-stream errors have no HTTP status: the type is
 * all there is. A type we do not know falls through to the HTTP status.
 */
const anthropicErrorType: Rule = ({ error }) => {
  const type = anthropicType(error)
  if (type === undefined) return undefined
  const kind = ANTHROPIC_TRANSIENT_TYPES.has(type)
    ? "transient"
    : ANTHROPIC_DETERMINISTIC_TYPES.has(type)
    ? "deterministic"
    : undefined
  if (kind === undefined) return undefined
  const status = httpStatus(error)
  const where = status !== undefined ? `HTTP ${status}` : "raised mid-stream"
  const said = apiMessage(error) === "" ? "" : `: "${truncate(apiMessage(error))}"`
  return verdict(
    kind,
    `Anthropic ${type} (${name(error)}, ${where}${said}) is ${kind} (rule: anthropic-error-type)`,
    "anthropic-error-type"
  )
}

/** 3c. The SDK could not reach the API, or timed out: the network may heal. */
const anthropicConnection: Rule = ({ chain, error }) => {
  const n = name(error)
  if (n !== "APIConnectionError" && n !== "APIConnectionTimeoutError") return undefined
  const root = chain[chain.length - 1]
  const detail = root !== error ? `; cause: ${label(root)}` : ""
  return verdict(
    "transient",
    `Anthropic ${n} (${truncate(message(error))}${detail}) is transient (rule: anthropic-connection)`,
    "anthropic-connection"
  )
}

const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 409, 425, 429, 500, 502, 503, 504, 529])

/**
 * 4. An HTTP status on any error object: the table's retryable ones heal (rule `http-status`), other 4xx do
 * not; any other 5xx is taken as a server fault that may heal, under its own rule name (`http-5xx`) so that
 * a status dropped from the table shows in the verdict.
 */
const httpStatusRule: Rule = ({ error }) => {
  const status = httpStatus(error)
  if (status === undefined || status < 400) return undefined
  const text = STATUS_TEXT[status]
  const said = `HTTP ${status}${text ? ` ${text}` : ""}`
  if (!TRANSIENT_STATUSES.has(status) && status >= 500) {
    return verdict("transient", `${said} is a server error, taken as transient (rule: http-5xx)`, "http-5xx")
  }
  const kind = TRANSIENT_STATUSES.has(status) ? "transient" : "deterministic"
  return verdict(kind, `${said} is ${kind} (rule: http-status)`, "http-status")
}

/** 5a. SQLite: a busy or locked database heals; a schema mismatch or a constraint violation does not. */
const sqlite: Rule = ({ chain }) => {
  for (const e of chain) {
    const code = str(get(e, "code")) ?? ""
    const msg = message(e)
    if (/^SQLITE_(BUSY|LOCKED)/.test(code) || /database (table )?is locked/i.test(msg)) {
      return verdict("transient", `SQLite ${code || "lock"} (${truncate(msg)}) is transient (rule: sqlite-code)`, "sqlite-code")
    }
    if (/no such (column|table)|has no column named/i.test(msg)) {
      return verdict(
        "deterministic",
        `SQLite "${truncate(msg)}": the schema does not match the query (a missing migration?), which no retry heals ` +
          `(rule: sqlite-code)`,
        "sqlite-code"
      )
    }
    if (/^SQLITE_(CONSTRAINT|MISMATCH)/.test(code)) {
      return verdict("deterministic", `SQLite ${code} (${truncate(msg)}) is deterministic (rule: sqlite-code)`, "sqlite-code")
    }
  }
  return undefined
}

const POSTGRES_TRANSIENT: ReadonlyMap<string, string> = new Map([
  ["40001", "serialization_failure"],
  ["40P01", "deadlock_detected"],
  ["55P03", "lock_not_available"],
  ["57P01", "admin_shutdown"],
  ["57P03", "cannot_connect_now"],
  ["53300", "too_many_connections"]
])
const POSTGRES_DETERMINISTIC: ReadonlyMap<string, string> = new Map([
  ["42703", "undefined_column"],
  ["42P01", "undefined_table"]
])

/** 5b. Postgres SQLSTATE codes: serialization, deadlock, lock, shutdown and connection classes heal. */
const postgres: Rule = ({ chain }) => {
  for (const e of chain) {
    const code = str(get(e, "code"))
    if (code === undefined || !/^[0-9][0-9A-Z]{4}$/.test(code)) continue
    const transientName = POSTGRES_TRANSIENT.get(code) ?? (code.startsWith("08") ? "connection_exception" : undefined)
    if (transientName !== undefined) {
      return verdict(
        "transient",
        `Postgres ${code} ${transientName} (${truncate(message(e))}) is transient (rule: postgres-code)`,
        "postgres-code"
      )
    }
    const deterministicName = POSTGRES_DETERMINISTIC.get(code) ??
      (code.startsWith("23") ? "integrity_constraint_violation" : code.startsWith("22") ? "data_exception" : undefined)
    if (deterministicName !== undefined) {
      return verdict(
        "deterministic",
        `Postgres ${code} ${deterministicName} (${truncate(message(e))}) is deterministic (rule: postgres-code)`,
        "postgres-code"
      )
    }
  }
  return undefined
}

/**
 * 5c. What the `pg` client throws without a SQLSTATE when the connection, not the query, failed: the server
 * went away mid-query ("Connection terminated unexpectedly"), a query on a client whose connection failed
 * or was ended ("… not queryable"), a connect or query timeout of the client or its pool. The next attempt,
 * on a new connection, may succeed.
 */
const POSTGRES_CLIENT = [
  /^Connection terminated unexpectedly$/,
  /^Connection terminated due to connection timeout$/,
  /^Connection terminated$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Client was closed and is not queryable$/,
  // The client's own connect timeout (pg 8.2x), and its pool's wait for a free connection.
  /^timeout expired$/,
  /^timeout exceeded when trying to connect$/,
  /^Query read timeout$/
]

const postgresClient: Rule = ({ chain }) => {
  const found = chain.find((e) => {
    const text = message(e)
    return POSTGRES_CLIENT.some((pattern) => pattern.test(text))
  })
  return found === undefined ? undefined : verdict(
    "transient",
    `the Postgres connection failed (${truncate(message(found))}): a new connection may succeed (rule: postgres-client)`,
    "postgres-client"
  )
}

// ENOTFOUND is left out on purpose: a host that does not resolve is a configuration error; only EAI_AGAIN
// (a temporary resolver failure) heals.
const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EPIPE",
  "ECONNREFUSED",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT"
])

/**
 * 6. Node and undici network codes anywhere in the cause chain (`TypeError: fetch failed` and
 * `TypeError: terminated` hide them in `.cause`).
 */
const networkCode: Rule = ({ chain, error }) => {
  const coded = chain.filter((e) => NETWORK_CODES.has(str(get(e, "code")) ?? ""))
  // An AggregateError (a connection tried on several addresses) has the code but no message: its errors say where.
  const found = coded.find((e) => message(e) !== "") ?? coded[0]
  if (found === undefined) return undefined
  const code = str(get(found, "code"))
  const cut = message(error) === "terminated" ? "a response cut short: " : ""
  const outer = found === error ? "" : ` under ${label(error)}`
  return verdict(
    "transient",
    `${cut}network error ${code} (${truncate(message(found))})${outer} is transient (rule: network-code)`,
    "network-code"
  )
}

/** 6b. A timeout we set (`AbortSignal.timeout`, `Effect.timeout`): the next attempt may be faster. */
const timeout: Rule = ({ chain }) => {
  const found = chain.find((e) => name(e) === "TimeoutError" || Cause.isTimeoutException(e))
  return found === undefined
    ? undefined
    : verdict("transient", `timed out (${label(found)}) is transient (rule: timeout)`, "timeout")
}

/** 7. A Schema decode error: the data does not match its Schema, and will not on the next attempt either. */
const schema: Rule = ({ chain }) => {
  const found = chain.find((e) => get(e, "_tag") === "ParseError")
  return found === undefined ? undefined : verdict(
    "deterministic",
    `schema decode failed (${truncate(message(found))}): the data does not match its Schema (rule: schema)`,
    "schema"
  )
}

/** 8. Anything else. Retries are earned, not assumed. */
const unknown = ({ error }: Subject): Verdict =>
  verdict(
    "deterministic",
    `unknown error (${label(error)}): unknown errors are not retried; classify it in the step (\`classify\`) if ` +
      `it can heal (rule: unknown)`,
    "unknown"
  )

const rules: ReadonlyArray<Rule> = [
  alreadyTagged,
  shouldRetryHeader,
  cancelled,
  spendLimit,
  anthropicErrorType,
  anthropicConnection,
  httpStatusRule,
  sqlite,
  postgres,
  postgresClient,
  networkCode,
  timeout,
  schema
]

// ---------------------------------------------------------------------------------------------------------
// retry-after
// ---------------------------------------------------------------------------------------------------------

/** Attach the server's `retry-after-ms` / `retry-after` hint to a transient verdict that has none yet. */
const withRetryAfter = (v: Verdict, { error, now }: Subject): Verdict => {
  if (v.kind !== "transient" || v.retryAfterMs !== undefined) return v
  const ms = retryAfterMillis(error, now)
  return ms === undefined ? v : { ...v, retryAfterMs: ms }
}

/**
 * `retry-after-ms` (milliseconds, the Anthropic API's) wins over `retry-after` (seconds, or an HTTP date).
 * Unparseable, negative or past values are ignored.
 */
export const retryAfterMillis = (error: unknown, now: number): number | undefined => {
  const ms = header(error, "retry-after-ms")
  if (ms !== undefined) {
    const n = Number.parseFloat(ms)
    if (Number.isFinite(n) && n >= 0) return n
  }
  const after = header(error, "retry-after")?.trim()
  if (after === undefined || after === "") return undefined
  if (/^\d+(\.\d+)?$/.test(after)) return Number.parseFloat(after) * 1000
  const date = Date.parse(after)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

// ---------------------------------------------------------------------------------------------------------
// Reading unknown errors
// ---------------------------------------------------------------------------------------------------------

const verdict = (
  kind: Verdict["kind"],
  reason: string,
  rule: string,
  retryAfterMs?: number
): Verdict => (retryAfterMs === undefined ? { kind, reason, rule } : { kind, reason, rule, retryAfterMs })

const get = (u: unknown, key: string): unknown => (Predicate.hasProperty(u, key) ? u[key] : undefined)

const str = (u: unknown): string | undefined =>
  typeof u === "string" ? u : typeof u === "number" ? String(u) : undefined

const name = (u: unknown): string =>
  str(get(u, "name")) ?? str(get(u, "_tag")) ??
    (Predicate.isObject(u) ? str(get(u.constructor, "name")) : undefined) ?? typeof u

const message = (u: unknown): string => str(get(u, "message")) ?? (typeof u === "string" ? u : "")

/** One line, at most `max` characters. */
const truncate = (s: string, max = 200): string => {
  const line = s.replace(/\s+/g, " ").trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

/** The API's own message (the SDK's `apiMessage`, or the body's `error.message`), without the JSON around it. */
const apiMessage = (u: unknown): string =>
  str(get(u, "apiMessage")) ?? str(get(get(get(u, "error"), "error"), "message")) ?? ""

/** `Name: message`, short enough for a reason. */
const label = (u: unknown): string => {
  const msg = message(u)
  return msg === "" ? name(u) : `${name(u)}: ${truncate(msg)}`
}

/** The error, then its `.cause`s (and an AggregateError's `.errors`): at most 16 links, each once. */
const causeChain = (u: unknown): ReadonlyArray<unknown> => {
  const seen = new Set<unknown>()
  const queue: Array<unknown> = [u]
  while (queue.length > 0 && seen.size < 16) {
    const next = queue.shift()
    if (next === undefined || next === null || seen.has(next)) continue
    seen.add(next)
    queue.push(get(next, "cause"))
    const errors = get(next, "errors")
    if (Array.isArray(errors)) queue.push(...errors)
  }
  return [...seen]
}

/** `status`, `statusCode` or `response.status` when it is an HTTP status code. */
const httpStatus = (u: unknown): number | undefined => {
  const response = get(u, "response")
  const candidates = [get(u, "status"), get(u, "statusCode"), get(response, "status"), get(response, "statusCode")]
  return candidates.find((c): c is number => Number.isInteger(c) && Number(c) >= 100 && Number(c) <= 599)
}

const ANTHROPIC_CLASS_NAMES: ReadonlySet<string> = new Set([
  "APIError",
  "BadRequestError",
  "AuthenticationError",
  "PaymentRequiredError",
  "PermissionDeniedError",
  "NotFoundError",
  "RequestTimeoutError",
  "ConflictError",
  "PreconditionFailedError",
  "ContentTooLargeError",
  "UnprocessableEntityError",
  "RateLimitError",
  "RequestHeaderFieldsTooLargeError",
  "ClientClosedRequestError",
  "InternalServerError",
  "NotImplementedError",
  "ServiceUnavailableError",
  "GatewayTimeoutError",
  "OverloadedError"
])

/**
 * The Anthropic API's `error.type`: the SDK's `type` field (on its own classes only), else the body's
 * `error.error.type` (`{"type":"error","error":{"type":…}}`) or `error.type`.
 */
const anthropicType = (u: unknown): string | undefined => {
  const own = ANTHROPIC_CLASS_NAMES.has(name(u)) ? str(get(u, "type")) : undefined
  const body = get(u, "error")
  const candidates = [own, str(get(get(body, "error"), "type")), str(get(body, "type"))]
  return candidates.find((t): t is string => t !== undefined && t !== "error")
}

/** A header from `u.headers` or `u.response.headers`: a `Headers` (fetch, the SDK) or a plain record. */
const header = (u: unknown, key: string): string | undefined =>
  headerIn(get(u, "headers"), key) ?? headerIn(get(get(u, "response"), "headers"), key)

const headerIn = (headers: unknown, key: string): string | undefined => {
  if (!Predicate.isObject(headers)) return undefined
  if (Predicate.hasProperty(headers, "get") && Predicate.isFunction(headers.get)) {
    const value: unknown = headers.get(key)
    return str(value)
  }
  for (const [k, value] of Object.entries(headers)) {
    if (k.toLowerCase() !== key) continue
    const first: unknown = Array.isArray(value) ? value[0] : value
    return str(first)
  }
  return undefined
}

/** Milliseconds of a `Duration`-like value (an Effect `Duration`, or a number of milliseconds). */
const durationMillis = (u: unknown): number | undefined => {
  if (Duration.isDuration(u)) return Duration.toMillis(u)
  return typeof u === "number" && Number.isFinite(u) && u >= 0 ? u : undefined
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  413: "Content Too Large",
  422: "Unprocessable Content",
  425: "Too Early",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  529: "Overloaded"
}
