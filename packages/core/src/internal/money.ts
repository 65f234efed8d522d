/**
 * The cost ledger's money: dollars summed exactly, as integers of 10^-18 dollars. A price (per million
 * tokens) with at most 12 decimals times a token count is one such integer, so no sum of them carries float
 * noise; a report hands out the exact sum as a decimal string and its nearest float.
 */
import type { Tally } from "../CostLedger.js"
import * as Pricing from "../Pricing.js"
import type { Usage } from "../Usage.js"

export const zero: Tally = {
  usd: 0,
  usdExact: "0",
  inputTokens: 0,
  outputTokens: 0,
  cacheWriteTokens: 0,
  cacheReadTokens: 0,
  calls: 0
}

const SCALE = 18
const PRICE_SCALE = 12

/** A price per million tokens as an integer of 10^-12 dollars; finer digits (beyond 12) are rounded off. */
const scaledPrice = (price: number): bigint => {
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(price))
  if (match === null) return BigInt(Math.round(price * 10 ** PRICE_SCALE))
  const [, whole = "0", fraction = "", exponent = "0"] = match
  const shift = PRICE_SCALE + Number(exponent) - fraction.length
  const digits = BigInt(whole + fraction)
  if (shift >= 0) return digits * 10n ** BigInt(shift)
  const divisor = 10n ** BigInt(-shift)
  return (digits + divisor / 2n) / divisor
}

/** An exact amount of 10^-18 dollars as a plain decimal string: \`0.085692\`, \`12\`, \`0\`. */
const decimal = (units: bigint): string => {
  const sign = units < 0n ? "-" : ""
  const digits = (units < 0n ? -units : units).toString().padStart(SCALE + 1, "0")
  const whole = digits.slice(0, -SCALE)
  const fraction = digits.slice(-SCALE).replace(/0+$/, "")
  return `${sign}${whole}${fraction === "" ? "" : `.${fraction}`}`
}

/** A tally being summed: exact dollars (`units` of 10^-18), tokens and calls. */
export interface MutableTally {
  units: bigint
  inputTokens: number
  outputTokens: number
  cacheWriteTokens: number
  cacheReadTokens: number
  calls: number
}

export const tally = (): MutableTally => ({
  units: 0n,
  inputTokens: 0,
  outputTokens: 0,
  cacheWriteTokens: 0,
  cacheReadTokens: 0,
  calls: 0
})

/** A tally as reports hand it: its exact dollars as a decimal string, and as the nearest float. */
export const frozen = (t: MutableTally): Tally => {
  const usdExact = decimal(t.units)
  return {
    usd: Number(usdExact),
    usdExact,
    inputTokens: t.inputTokens,
    outputTokens: t.outputTokens,
    cacheWriteTokens: t.cacheWriteTokens,
    cacheReadTokens: t.cacheReadTokens,
    calls: t.calls
  }
}

/** What was added to a tally between two readings of it. */
export const difference = (after: MutableTally, before: MutableTally): MutableTally => ({
  units: after.units - before.units,
  inputTokens: after.inputTokens - before.inputTokens,
  outputTokens: after.outputTokens - before.outputTokens,
  cacheWriteTokens: after.cacheWriteTokens - before.cacheWriteTokens,
  cacheReadTokens: after.cacheReadTokens - before.cacheReadTokens,
  calls: after.calls - before.calls
})

/** Adds the usage to the tally, priced with `table`; returns the model when it has no price. */
export const addUsage = (t: MutableTally, usage: Usage, table: Pricing.PriceTable): string | undefined => {
  t.inputTokens += usage.inputTokens
  t.outputTokens += usage.outputTokens
  t.cacheWriteTokens += usage.cacheWriteTokens
  t.cacheReadTokens += usage.cacheReadTokens
  t.calls += 1
  const price = Pricing.lookup(table, usage.model)
  if (price === undefined) return usage.model
  t.units += BigInt(usage.inputTokens) * scaledPrice(price.input) +
    BigInt(usage.outputTokens) * scaledPrice(price.output) +
    BigInt(usage.cacheWriteTokens) * scaledPrice(price.cacheWrite) +
    BigInt(usage.cacheReadTokens) * scaledPrice(price.cacheRead)
  return undefined
}
