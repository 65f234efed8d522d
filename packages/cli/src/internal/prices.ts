/**
 * The price table `ledgerflow cost` uses, and money in its JSON. With `--config`, the config's own table:
 * its `prices` export (a `Pricing.PriceTable`), else the `Pricing` service its `layer` provides; without a
 * config, the ledger's default (`Pricing.defaultTable`).
 */
import { type CostLedger, Pricing } from "@ledgerflow/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Config from "./config.js"
import { badInput, type CliError } from "./exit.js"
import type { GlobalsService } from "./globals.js"

/** The table of `--config`, when one is given; `undefined` for the default table. */
export const fromConfig = (globals: GlobalsService): Effect.Effect<Pricing.PriceTable | undefined, CliError> =>
  Effect.gen(function*() {
    if (!globals.configGiven) return undefined
    const config = yield* Config.load(globals, "cost")
    if (config.prices !== undefined) {
      const decoded = Pricing.decodeTable(config.prices)
      if (Either.isLeft(decoded)) {
        return yield* badInput(
          `the \`prices\` of ${config.file} is not a price table (${
            ParseResult.TreeFormatter.formatErrorSync(decoded.left).split("\n").join(" ")
          }); export one made with Pricing.make({ models })`
        )
      }
      return decoded.right
    }
    if (config.layer === undefined) return undefined
    const layer = config.layer
    const context = yield* Effect.scoped(Layer.build(layer)).pipe(
      Effect.mapError((cause) =>
        badInput(
          `the \`layer\` of ${config.file} failed to build, so its price table cannot be read: ${
            Predicate.hasProperty(cause, "message") ? String(cause.message) : String(cause)
          }; export \`prices\` (Pricing.make({ models })) to price without building the layer`,
          cause
        )
      )
    )
    return Option.getOrUndefined(Context.getOption(context, Pricing.Pricing))
  })

/** A tally for JSON: its dollars as the exact decimal string (`"0.085692"`), its tokens as numbers. */
export const json = (tally: CostLedger.Tally) => {
  const { usdExact, ...rest } = tally
  return { ...rest, usd: usdExact }
}
