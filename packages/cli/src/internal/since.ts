/**
 * `--since`: an ISO date (`2025-01-31`, `2025-01-31T12:00Z`) or a duration back from now (`90s`, `30m`,
 * `2h`, `7d`, `2w`), parsed at the boundary into epoch milliseconds.
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Epoch ms for `text`, or undefined when it is neither a duration nor a date. */
export const parse = (text: string, now: number): number | undefined => {
  const duration = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim())
  if (duration !== null) return now - Number(duration[1]) * units[duration[2]!]!
  if (!/^\d{4}-\d{2}-\d{2}/.test(text.trim())) return undefined
  const at = Date.parse(text.trim())
  return Number.isNaN(at) ? undefined : at
}

export const option = (what: string): Options.Options<Option.Option<number>> =>
  Options.text("since").pipe(
    Options.withPseudoName("WHEN"),
    Options.withDescription(`Only ${what} since WHEN: an ISO date (2025-01-31, 2025-01-31T12:00Z) or a duration back from now (30m, 2h, 7d).`),
    Options.mapEffect((text) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const at = parse(text, now)
        return at === undefined
          ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(
            `--since takes an ISO date (2025-01-31, 2025-01-31T12:00Z) or a duration (30m, 2h, 7d); got "${text}"`
          )))
          : Effect.succeed(at)
      })
    ),
    Options.optional
  )
