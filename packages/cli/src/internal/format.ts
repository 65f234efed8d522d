/**
 * How numbers, times and durations read in the human output: compact, and of stable width where tables
 * need it.
 */

/** `850ms`, `1.2s`, `42s`, `3m05s`, `2h10m`, `3d4h`. */
export const duration = (ms: number): string => {
  if (ms < 0) return `-${duration(-ms)}`
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`
  return `${Math.floor(h / 24)}d${h % 24}h`
}

/** How long ago, in one unit: `12s`, `5m`, `3h`, `2d`. */
export const age = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86_400)}d`
}

/** ISO 8601 in UTC, to the second: `2025-11-25T22:31:05Z`. */
export const time = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")

/** `12,345`. */
export const count = (n: number): string => Math.round(n).toLocaleString("en-US")

/** Token usage as people read it: `8,000 in / 300 out` (+ cache reads and writes when there are any). */
export const tokens = (usage: {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheWriteTokens?: number
  readonly cacheReadTokens?: number
}): string => {
  const cache = [
    (usage.cacheWriteTokens ?? 0) > 0 ? `${count(usage.cacheWriteTokens ?? 0)} cache write` : "",
    (usage.cacheReadTokens ?? 0) > 0 ? `${count(usage.cacheReadTokens ?? 0)} cache read` : ""
  ].filter((s) => s !== "")
  return `${count(usage.inputTokens)} in / ${count(usage.outputTokens)} out${cache.length > 0 ? ` (${cache.join(", ")})` : ""}`
}

/** A short form of a 64-hex hash for people (the full one is in `--json`). */
export const shortHash = (hash: string): string => hash.slice(0, 12)

/** A value as one line of JSON, for `--verbose`. */
export const json = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? "undefined"
  } catch {
    return String(value)
  }
}

/** How much of a long body (a step's input or output JSON) `show --verbose` prints without `--full`. */
export const clipAt = 200

/** A long text cut to `max` characters, saying how much was left out and how to see it. */
export const clip = (text: string, max: number = clipAt): string =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters; --full shows all)`
