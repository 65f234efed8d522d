/**
 * A run's budget, checked before each paid attempt from what the run has spent (the journal's usage plus
 * this execution's) and the estimates of attempts in flight — so concurrent steps cannot each pass the
 * check alone. In memory only: no store read on the step path.
 */
import * as Failure from "../Failure.js"
import type { Budget } from "../Pipeline.js"
import * as Pricing from "../Pricing.js"
import { BudgetExceeded, type Definition, type Estimate } from "../StepDefinition.js"
import type * as Journal from "../Journal.js"
import { Usage } from "../Usage.js"

export interface Reservation {
  readonly usd: number
  readonly inputTokens: number
}

/** What an attempt without an estimate holds: nothing. */
export const noReservation: Reservation = { usd: 0, inputTokens: 0 }

export class BudgetTracker {
  private readonly spent = { usd: 0, inputTokens: 0 }
  private readonly reserved = { usd: 0, inputTokens: 0 }

  constructor(
    private readonly runId: string,
    private readonly limit: Budget,
    private readonly pricing: Pricing.PriceTable,
    state: Journal.RunState
  ) {
    for (const entry of state.steps.values()) this.addSpent(entry.usage)
  }

  addSpent(usage: ReadonlyArray<Usage>): void {
    const table = this.pricing
    for (const u of usage) {
      this.spent.inputTokens += u.inputTokens
      const cost = Pricing.cost(table, u)
      if (cost._tag === "Priced") this.spent.usd += cost.usd
    }
  }

  /**
   * Before a paid attempt: would the run's spending so far plus this attempt's estimate pass the budget?
   * Returns the reservation to hold while the attempt runs, or the `BudgetExceeded` to fail the step's
   * call with, before anything is paid.
   */
  reserve<I, O, E, R>(
    step: Definition<I, O, E, R>,
    input: I,
    stepId: string
  ): Reservation | BudgetExceeded {
    const budget = this.limit
    if (step.estimate === undefined) return noReservation
    const runId = this.runId
    const exceeded = (
      fields: Pick<BudgetExceeded, "measure" | "limit" | "message"> & { readonly spent?: number; readonly estimated?: number }
    ) => new BudgetExceeded({ runId, stepId, ...fields })
    let estimate: Estimate
    try {
      estimate = step.estimate(input)
    } catch (error) {
      return exceeded({
        measure: budget.usd !== undefined ? "usd" : "inputTokens",
        limit: budget.usd ?? budget.inputTokens ?? 0,
        message:
          `the estimate of step ${stepId} threw (${Failure.describe(error).message}); the run's budget cannot be checked`
      })
    }
    const usage = new Usage({ model: estimate.model, inputTokens: estimate.inputTokens, outputTokens: estimate.outputTokens })
    if (budget.inputTokens !== undefined) {
      const before = this.spent.inputTokens + this.reserved.inputTokens
      if (before + usage.inputTokens > budget.inputTokens) {
        return exceeded({
          measure: "inputTokens",
          limit: budget.inputTokens,
          spent: before,
          estimated: usage.inputTokens,
          message:
            `step ${stepId} of run ${runId} would pass the run's budget of ${budget.inputTokens} input tokens: ${before} spent so far + ~${usage.inputTokens} estimated for this call (${usage.model}); it was not called`
        })
      }
    }
    let usd = 0
    if (budget.usd !== undefined) {
      const cost = Pricing.cost(this.pricing, usage)
      if (cost._tag === "Unpriced") {
        return exceeded({
          measure: "usd",
          limit: budget.usd,
          message:
            `step ${stepId} of run ${runId} uses model ${cost.model}, which has no price, so the run's budget of $${budget.usd} cannot be checked; add its price with Pricing.layer({ models: { "${cost.model}": { input, output, cacheWrite, cacheRead } } }); it was not called`
        })
      }
      usd = cost.usd
      const before = this.spent.usd + this.reserved.usd
      if (before + usd > budget.usd) {
        return exceeded({
          measure: "usd",
          limit: budget.usd,
          spent: before,
          estimated: usd,
          message:
            `step ${stepId} of run ${runId} would pass the run's budget of $${budget.usd}: $${before.toFixed(4)} spent so far + ~$${usd.toFixed(4)} estimated for this call (${usage.model}, ~${usage.inputTokens} input + up to ${usage.outputTokens} output tokens); it was not called`
        })
      }
    }
    this.reserved.usd += usd
    this.reserved.inputTokens += usage.inputTokens
    return { usd, inputTokens: usage.inputTokens }
  }

  release(reservation: Reservation): void {
    this.reserved.usd -= reservation.usd
    this.reserved.inputTokens -= reservation.inputTokens
  }
}
