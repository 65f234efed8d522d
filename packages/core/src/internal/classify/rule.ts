/** What a classifier rule sees and returns: plain data, so `Failure.ts` builds its errors without a cycle. */

/** What the classifier decided, and why. */
export interface Verdict {
  readonly kind: "transient" | "deterministic"
  /** A human reason that ends with `(rule: <rule>)`. */
  readonly reason: string
  /** The rule that fired: `explicit`, `x-should-retry`, `cancelled`, `spend-limit`, `anthropic-error-type`, … */
  readonly rule: string
  /** The server's hint, in milliseconds from now (transient verdicts only). */
  readonly retryAfterMs?: number
}

/** What a rule sees: the error, its cause chain (the error first), and the time for `retry-after` dates. */
export interface Subject {
  readonly error: unknown
  readonly chain: ReadonlyArray<unknown>
  readonly now: number
}

export type Rule = (subject: Subject) => Verdict | undefined

/** A verdict; `retryAfterMs` only when there is one. */
export const verdict = (
  kind: Verdict["kind"],
  reason: string,
  rule: string,
  retryAfterMs?: number
): Verdict => (retryAfterMs === undefined ? { kind, reason, rule } : { kind, reason, rule, retryAfterMs })
