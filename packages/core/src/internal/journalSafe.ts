/**
 * What is journaled must come back: an encoded value is written to the log as JSON and decoded again when
 * served. This finds what JSON would drop or change (`NaN`, a `Date`, a `BigInt`, a `Map`, a function)
 * and where, so a step fails at once, on its first run, instead of at a resume as a false divergence.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"

/** Where in the value, as a path a reader can follow: `.stats.avg`, `[2].when`, or `(the value)`. */
export const formatPath = (path: ReadonlyArray<string | number>): string =>
  path.length === 0
    ? "the value itself"
    : path.map((p) => (typeof p === "number" ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`))
      .join("")

/** A part of a value that JSON cannot carry as it is. */
export interface Problem {
  readonly path: ReadonlyArray<string | number>
  readonly what: string
}

/** JSON drops it silently (an `undefined` property) or turns it into another value (`-0`, `undefined` in an array). */
const LOSSY = "lossy"

const describeValue = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? undefined : `${value} (JSON writes it as null)`
    case "bigint":
      return `a BigInt (${value}n), which JSON cannot write`
    case "function":
      return "a function (JSON drops it)"
    case "symbol":
      return "a symbol (JSON drops it)"
    default:
      return undefined
  }
}

/**
 * Walk the value: the first part JSON cannot carry, `LOSSY` when JSON would only drop `undefined`s or
 * a `-0` (the Schema decides whether that matters), or `undefined` when the value is plain JSON.
 */
const walk = (value: unknown, path: Array<string | number>): Problem | typeof LOSSY | undefined => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return undefined
  if (typeof value === "number") {
    if (Object.is(value, -0)) return LOSSY
    const what = describeValue(value)
    return what === undefined ? undefined : { path: [...path], what }
  }
  if (typeof value !== "object") {
    const what = describeValue(value) ?? `${typeof value}`
    return { path: [...path], what }
  }
  let lossy = false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = visit(value[i], i, path)
      if (found === LOSSY) lossy = true
      else if (found !== undefined) return found
    }
    return lossy ? LOSSY : undefined
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) {
    const name = value.constructor?.name ?? "object"
    const becomes = value instanceof Date ? "a string" : value instanceof Map || value instanceof Set ? "{}" : "a plain object, or fails"
    return { path: [...path], what: `a ${name} (JSON stores it as ${becomes}; it would not come back as a ${name})` }
  }
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue
    const found = visit(Reflect.get(value, key), key, path)
    if (found === LOSSY) lossy = true
    else if (found !== undefined) return found
  }
  return lossy ? LOSSY : undefined
}

/** One element or property: JSON drops an `undefined` one (or writes it as null in an array). */
const visit = (item: unknown, key: string | number, path: Array<string | number>): Problem | typeof LOSSY | undefined => {
  if (item === undefined) return LOSSY
  path.push(key)
  const found = walk(item, path)
  path.pop()
  return found
}

/** The first part of `value` that JSON cannot carry as it is, or `undefined` when it is plain JSON. */
export const problem = (value: unknown): Problem | undefined => {
  const found = walk(value, [])
  return found === LOSSY ? undefined : found
}

/** Whether `value` is plain JSON that comes back from the log exactly (fields kept on a failure). */
export const isPlainJson = (value: unknown): boolean => walk(value, []) === undefined

/**
 * Why an encoded value would not come back from the journal, or `undefined` when it does: it must be
 * plain JSON and decode again with its Schema. The common case (plain JSON) costs a walk and a decode,
 * with no JSON round trip; only a value with `undefined`s in it is round-tripped before the decode.
 */
export const check = (
  encoded: unknown,
  decode: (u: unknown) => Either.Either<unknown, ParseResult.ParseError>
): string | undefined => {
  // A top-level `undefined` (a `Schema.Void` output) is written without its key and read back as itself.
  if (encoded === undefined) return undefined
  const found = walk(encoded, [])
  if (found !== undefined && found !== LOSSY) return `at ${formatPath(found.path)}: ${found.what}`
  const back: unknown = found === LOSSY ? JSON.parse(JSON.stringify(encoded)) : encoded
  const decoded = decode(back)
  return Either.isLeft(decoded)
    ? `it does not decode again from the journal's JSON: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`
    : undefined
}
