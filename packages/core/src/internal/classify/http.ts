/**
 * Rules 3–4: HTTP and the Anthropic API — an exhausted spend limit, the API's `error.type`, the SDK's
 * connection errors, then the HTTP status on any error object.
 */
import { get, httpStatus, label, message, name, str, truncate } from "./read.js"
import { type Rule, verdict } from "./rule.js"

/** 3a. A 429 or 400 saying the account's spend limit or credit is exhausted: waiting does not refill it. */
export const spendLimit: Rule = ({ error }) => {
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
export const anthropicErrorType: Rule = ({ error }) => {
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
export const anthropicConnection: Rule = ({ chain, error }) => {
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
export const httpStatusRule: Rule = ({ error }) => {
  const status = httpStatus(error)
  if (status === undefined || status < 400) return undefined
  const text = STATUS_TEXT[status]
  const said = `HTTP ${status}${text ? ` ${text}` : ""}`
  if (TRANSIENT_STATUSES.has(status)) return verdict("transient", `${said} is transient (rule: http-status)`, "http-status")
  if (status >= 500) {
    return verdict("transient", `${said} is a server error, taken as transient (rule: http-5xx)`, "http-5xx")
  }
  return verdict("deterministic", `${said} is deterministic (rule: http-status)`, "http-status")
}

/** The API's own message (the SDK's `apiMessage`, or the body's `error.message`), without the JSON around it. */
const apiMessage = (u: unknown): string =>
  str(get(u, "apiMessage")) ?? str(get(get(get(u, "error"), "error"), "message")) ?? ""

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
