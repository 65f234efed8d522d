/**
 * The error that says what went wrong, found under the wrappers that only say that something did: a
 * failure's cause and fingerprint are taken from it (DESIGN, "Failure model"). `@effect/sql`'s `SqlError`
 * ("Failed to prepare statement") holds the driver's error with its code and message; `TypeError: fetch
 * failed` and `terminated` hold undici's; Effect's `UnknownException` holds what a promise rejected with.
 */
import * as Predicate from "effect/Predicate"
import { get } from "./classify/read.js"

/** Tags and names of errors that wrap the telling one and add only generic text. */
const WRAPPER_TAGS: ReadonlySet<string> = new Set(["SqlError", "UnknownException"])
const WRAPPER_NAMES: ReadonlySet<string> = new Set([
  "FiberFailure",
  "APIConnectionError",
  "APIConnectionTimeoutError"
])
/** Messages of Node's and undici's fetch wrappers. */
const WRAPPER_MESSAGES: ReadonlySet<string> = new Set(["fetch failed", "terminated"])

const isWrapper = (u: unknown): boolean => {
  const tag = get(u, "_tag")
  const name = get(u, "name")
  const message = get(u, "message")
  return (typeof tag === "string" && WRAPPER_TAGS.has(tag)) ||
    (typeof name === "string" && WRAPPER_NAMES.has(name)) ||
    (typeof message === "string" && (WRAPPER_MESSAGES.has(message) || message === ""))
}

/** An error-like cause: an object with a message of its own (not a plain value a wrapper kept). */
const errorLike = (u: unknown): boolean => Predicate.isObject(u) && typeof get(u, "message") === "string"

/**
 * `u`, or, while it is a wrapper whose `.cause` is an error, that cause: the innermost error that says what
 * went wrong. An error of the caller's own (a step's typed error, the SDK's `APIError` with its type) is
 * never a wrapper: it is kept, cause or not. At most 16 links, each once.
 */
export const innermost = (u: unknown): unknown => {
  let current = u
  const seen = new Set<unknown>([u])
  while (seen.size < 16 && isWrapper(current)) {
    const cause = get(current, "cause")
    if (!errorLike(cause) || seen.has(cause)) break
    seen.add(cause)
    current = cause
  }
  return current
}
