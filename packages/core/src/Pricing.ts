/**
 * The price table: what a model's tokens cost, per million, for input, output, cache writes and cache
 * reads. The cost ledger and run budgets turn recorded `Usage` into dollars with it. A model that is not
 * in the table is *unpriced*: its tokens are still counted, but it never silently costs $0.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Usage } from "./Usage.js"

/** USD per million tokens. `cacheWrite` is the 5-minute cache write rate (the API reports one count). */
export const ModelPrice = Schema.Struct({
  input: Schema.NonNegative,
  output: Schema.NonNegative,
  cacheWrite: Schema.NonNegative,
  cacheRead: Schema.NonNegative
}).annotations({ identifier: "ModelPrice" })
export type ModelPrice = typeof ModelPrice.Type

/** A price table: when its prices were taken, and the price of each model id. */
export const PriceTable = Schema.Struct({
  /** When the prices were taken (ISO date): reports print it, so a stale table is visible. */
  asOf: Schema.String,
  models: Schema.Record({ key: Schema.String, value: ModelPrice })
}).annotations({ identifier: "PriceTable" })
export type PriceTable = typeof PriceTable.Type

const price = (input: number, output: number, cacheWrite: number, cacheRead: number): ModelPrice => ({
  input,
  output,
  cacheWrite,
  cacheRead
})

/**
 * Anthropic's list prices (USD per million tokens) for the Claude 4.x and 3.x families, taken on
 * 2026-11-25 from https://platform.claude.com/docs/en/about-claude/pricing. Prices change and newer
 * families (5.x) are not listed here: such models are reported unpriced until you add them. Override or
 * extend the table with `Pricing.layer({ models: { ... } })`.
 *
 * Not modelled: 1-hour cache writes (priced here at the 5-minute rate), the Batch API discount, long-
 * context surcharges of some models above 200K input tokens, data-residency multipliers.
 */
export const defaultTable: PriceTable = {
  asOf: "2026-11-25",
  models: {
    // Opus 4.5 and later: $5 / $25.
    "claude-opus-4-8": price(5, 25, 6.25, 0.5),
    "claude-opus-4-7": price(5, 25, 6.25, 0.5),
    "claude-opus-4-6": price(5, 25, 6.25, 0.5),
    "claude-opus-4-5": price(5, 25, 6.25, 0.5),
    // Opus 4 and 4.1: $15 / $75.
    "claude-opus-4-1": price(15, 75, 18.75, 1.5),
    "claude-opus-4-0": price(15, 75, 18.75, 1.5),
    "claude-opus-4": price(15, 75, 18.75, 1.5),
    // Sonnet 4.x: $3 / $15.
    "claude-sonnet-4-6": price(3, 15, 3.75, 0.3),
    "claude-sonnet-4-5": price(3, 15, 3.75, 0.3),
    "claude-sonnet-4-0": price(3, 15, 3.75, 0.3),
    "claude-sonnet-4": price(3, 15, 3.75, 0.3),
    // Haiku 4.5: $1 / $5.
    "claude-haiku-4-5": price(1, 5, 1.25, 0.1),
    // The 3.x families.
    "claude-3-7-sonnet": price(3, 15, 3.75, 0.3),
    "claude-3-5-sonnet": price(3, 15, 3.75, 0.3),
    "claude-3-5-haiku": price(0.8, 4, 1, 0.08),
    "claude-3-opus": price(15, 75, 18.75, 1.5),
    "claude-3-haiku": price(0.25, 1.25, 0.3, 0.03)
  }
}

/** The price table in force. Optional: without it the engine and the ledger use `defaultTable`. */
export class Pricing extends Context.Tag("@ledgerflow/core/Pricing")<Pricing, PriceTable>() {}

/**
 * The table in force: the `Pricing` service when one is provided, else `defaultTable`. Needs no service,
 * so the engine and the ledger price with it whether or not a `Pricing` layer was given.
 */
export const current: Effect.Effect<PriceTable> = Effect.map(
  Effect.serviceOption(Pricing),
  Option.getOrElse(() => defaultTable)
)

/**
 * The default table with `overrides` laid over it (a model given here replaces the default entry);
 * `replace: true` uses only the models given.
 */
export const make = (overrides?: {
  readonly models?: Readonly<Record<string, ModelPrice>>
  readonly asOf?: string
  readonly replace?: boolean
}): PriceTable => ({
  asOf: overrides?.asOf ?? defaultTable.asOf,
  models: overrides?.replace === true
    ? { ...overrides.models }
    : { ...defaultTable.models, ...overrides?.models }
})

/** The `Pricing` service: the default table, with any overrides (see `make`). */
export const layer = (overrides?: Parameters<typeof make>[0]): Layer.Layer<Pricing> =>
  Layer.succeed(Pricing, make(overrides))

/** Validate a price table from outside (a config file, JSON): for `Pricing.layer({ models, replace })`. */
export const decodeTable = Schema.decodeUnknownEither(PriceTable)

/**
 * The price of a model id: an exact entry, else the id without its date suffix
 * (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`) or `-latest`. Never a guess by family.
 */
export const lookup = (table: PriceTable, model: string): ModelPrice | undefined => {
  const exact = table.models[model]
  if (exact !== undefined) return exact
  const base = model.replace(/-(\d{8}|latest)$/, "")
  return base === model ? undefined : table.models[base]
}

/** What some usage costs: dollars, or the model has no price (its tokens still count). */
export type Cost =
  | { readonly _tag: "Priced"; readonly usd: number }
  | { readonly _tag: "Unpriced"; readonly model: string }

/** The dollars of one usage record under a table. Pure. */
export const cost = (table: PriceTable, usage: Usage): Cost => {
  const p = lookup(table, usage.model)
  if (p === undefined) return { _tag: "Unpriced", model: usage.model }
  return {
    _tag: "Priced",
    usd: (usage.inputTokens * p.input + usage.outputTokens * p.output + usage.cacheWriteTokens * p.cacheWrite +
      usage.cacheReadTokens * p.cacheRead) / 1_000_000
  }
}
