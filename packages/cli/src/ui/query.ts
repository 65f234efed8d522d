/**
 * A page's query parameters, checked at the edge: an unknown name, a repeated one or a value out of range
 * is a `BadQuery` (a 400 page saying what was wrong and what the page takes), never a silently empty list.
 * Empty values are absent: a filter form submits its blank fields.
 */
import { HttpServerRequest } from "@effect/platform"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Engine, Event, EventStore, RunError, StoreError } from "@ledgerflow/core"
import * as Since from "../internal/since.js"
import type { Html } from "./html.js"

export class BadQuery extends Schema.TaggedError<BadQuery>()("BadQuery", { message: Schema.String }) {}

export class PageNotFound extends Schema.TaggedError<PageNotFound>()("PageNotFound", { message: Schema.String }) {}

/** The page's parameters by name (blank ones dropped), refusing names the page does not take. */
export const read = (
  allowed: ReadonlyArray<string>
): Effect.Effect<Readonly<Record<string, string>>, BadQuery, HttpServerRequest.ParsedSearchParams> =>
  Effect.flatMap(HttpServerRequest.ParsedSearchParams, (search) => {
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(search)) {
      if (!allowed.includes(name)) {
        return Effect.fail(
          new BadQuery({
            message: `this page takes no parameter "${name}"; it takes ${allowed.map((a) => `"${a}"`).join(", ")}`
          })
        )
      }
      if (typeof value !== "string") {
        return Effect.fail(new BadQuery({ message: `"${name}" is given ${value.length} times; give it once` }))
      }
      if (value.trim() !== "") out[name] = value.trim()
    }
    return Effect.succeed(out)
  })

/** One of a fixed set of words. */
export const choice = <const A extends string>(
  name: string,
  value: string | undefined,
  choices: ReadonlyArray<A>
): Effect.Effect<A | undefined, BadQuery> => {
  if (value === undefined) return Effect.succeed(undefined)
  const found = choices.find((c) => c === value)
  return found !== undefined
    ? Effect.succeed(found)
    : Effect.fail(new BadQuery({ message: `"${name}" must be one of ${choices.join(", ")}; got "${value}"` }))
}

/** A whole number from 1 to `max`. */
export const count = (name: string, value: string | undefined, max: number): Effect.Effect<number | undefined, BadQuery> => {
  if (value === undefined) return Effect.succeed(undefined)
  const n = Number(value)
  return /^\d+$/.test(value) && n >= 1 && n <= max
    ? Effect.succeed(n)
    : Effect.fail(new BadQuery({ message: `"${name}" must be a whole number from 1 to ${max}; got "${value}"` }))
}

/** `since`: what `--since` takes (an ISO date or a duration back from now), as epoch ms. */
export const since = (value: string | undefined): Effect.Effect<number | undefined, BadQuery> =>
  value === undefined ? Effect.succeed(undefined) : Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const at = Since.parse(value, now)
    return at === undefined
      ? Effect.fail(new BadQuery({
        message: `"since" takes an ISO date (2025-01-31, 2025-01-31T12:00Z) or a duration back from now (30m, 2h, 7d); got "${value}"`
      }))
      : Effect.succeed(at)
  })

/** What rendering a page can fail with; the server turns each into its status and page. */
export type PageError = BadQuery | PageNotFound | RunError.RunNotFound | StoreError.StoreError | Event.UnknownEvent

/** A page: read from the store, rendered as HTML. */
export type Page = Effect.Effect<Html, PageError, Engine.Engine | EventStore.EventStore>
