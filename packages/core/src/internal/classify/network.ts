/** Rules 6–7: the network and the clock (Node and undici error codes, timeouts we set), and Schema decode errors. */
import * as Cause from "effect/Cause"
import { get, label, message, name, str, truncate } from "./read.js"
import { type Rule, verdict } from "./rule.js"

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
export const networkCode: Rule = ({ chain, error }) => {
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
export const timeout: Rule = ({ chain }) => {
  const found = chain.find((e) => name(e) === "TimeoutError" || Cause.isTimeoutException(e))
  return found === undefined
    ? undefined
    : verdict("transient", `timed out (${label(found)}) is transient (rule: timeout)`, "timeout")
}

/** 7. A Schema decode error: the data does not match its Schema, and will not on the next attempt either. */
export const schema: Rule = ({ chain }) => {
  const found = chain.find((e) => get(e, "_tag") === "ParseError")
  return found === undefined ? undefined : verdict(
    "deterministic",
    `schema decode failed (${truncate(message(found))}): the data does not match its Schema (rule: schema)`,
    "schema"
  )
}
