/**
 * Reading unknown thrown values: fields that may or may not be there, a cause chain, HTTP status and
 * headers on the shapes fetch, undici, the Anthropic SDK and Node use. Shared by every family of rules.
 */
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"

export const get = (u: unknown, key: string): unknown => (Predicate.hasProperty(u, key) ? u[key] : undefined)

export const str = (u: unknown): string | undefined =>
  typeof u === "string" ? u : typeof u === "number" ? String(u) : undefined

export const name = (u: unknown): string =>
  str(get(u, "name")) ?? str(get(u, "_tag")) ??
    (Predicate.isObject(u) ? str(get(u.constructor, "name")) : undefined) ?? typeof u

export const message = (u: unknown): string => str(get(u, "message")) ?? (typeof u === "string" ? u : "")

/** One line, at most `max` characters. */
export const truncate = (s: string, max = 200): string => {
  const line = s.replace(/\s+/g, " ").trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}


/** `Name: message`, short enough for a reason. */
export const label = (u: unknown): string => {
  const msg = message(u)
  return msg === "" ? name(u) : `${name(u)}: ${truncate(msg)}`
}

/** The error, then its `.cause`s (and an AggregateError's `.errors`): at most 16 links, each once. */
export const causeChain = (u: unknown): ReadonlyArray<unknown> => {
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
export const httpStatus = (u: unknown): number | undefined => {
  const response = get(u, "response")
  const candidates = [get(u, "status"), get(u, "statusCode"), get(response, "status"), get(response, "statusCode")]
  return candidates.find((c): c is number => Number.isInteger(c) && Number(c) >= 100 && Number(c) <= 599)
}

/** A header from `u.headers` or `u.response.headers`: a `Headers` (fetch, the SDK) or a plain record. */
export const header = (u: unknown, key: string): string | undefined =>
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
export const durationMillis = (u: unknown): number | undefined => {
  if (Duration.isDuration(u)) return Duration.toMillis(u)
  return typeof u === "number" && Number.isFinite(u) && u >= 0 ? u : undefined
}
