/**
 * Rules 1–2: what the error or the server says of itself (an error already classified, `x-should-retry`),
 * and a cancellation the caller asked for.
 */
import * as Cause from "effect/Cause"
import { durationMillis, get, header, httpStatus, label, name, str } from "./read.js"
import { type Rule, verdict } from "./rule.js"

/** 1a. An error already classified (by the step, or decoded from the log) keeps its classification. */
export const alreadyTagged: Rule = ({ error }) => {
  const tag = get(error, "_tag")
  if (tag !== "Transient" && tag !== "Deterministic") return undefined
  const rule = str(get(error, "rule")) ?? "explicit"
  const reason = str(get(error, "reason")) ?? `already classified as ${tag} (rule: ${rule})`
  const retryAfterMs = tag === "Transient" ? durationMillis(get(error, "retryAfter")) : undefined
  return verdict(tag === "Transient" ? "transient" : "deterministic", reason, rule, retryAfterMs)
}

/** 1b. The server says whether to retry (`x-should-retry`, the header the Anthropic SDK obeys). */
export const shouldRetryHeader: Rule = ({ error }) => {
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
export const cancelled: Rule = ({ chain }) => {
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
