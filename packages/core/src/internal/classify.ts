/**
 * The classifier: turn any thrown value into a verdict (transient or deterministic), with a human reason
 * naming the rule that fired. The rules, in DESIGN's priority order, are listed here; each family lives in
 * `classify/` (hints, HTTP and Anthropic, SQL, network). Plain data only, so `Failure.ts` can build its
 * errors from it without an import cycle.
 */
import { alreadyTagged, cancelled, shouldRetryHeader } from "./classify/hints.js"
import { anthropicConnection, anthropicErrorType, httpStatusRule, spendLimit } from "./classify/http.js"
import { networkCode, schema, timeout } from "./classify/network.js"
import { causeChain, header, label } from "./classify/read.js"
import { type Rule, type Subject, type Verdict, verdict } from "./classify/rule.js"
import { postgres, postgresClient, sqlite } from "./classify/sql.js"

/** Classify any thrown value. `now` (epoch millis) resolves a `retry-after` given as an HTTP date. */
export const classify = (u: unknown, now: number = Date.now()): Verdict => {
  const subject: Subject = { error: u, chain: causeChain(u), now }
  for (const rule of rules) {
    const found = rule(subject)
    if (found !== undefined) return withRetryAfter(found, subject)
  }
  return unknown(subject)
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

