/**
 * A step call's identity in its run, and what the journal holds for it. `Calls` keeps the bookkeeping of
 * one execution (which step value owns each name, occurrence counters, entries already taken); `match` is
 * the pure rule deciding whether a call is served, has diverged, or must execute.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Failure from "../Failure.js"
import * as Journal from "../Journal.js"
import { DuplicateStepName, validateName } from "../StepDefinition.js"
import { hashJson, toJson } from "./hash.js"

export type Match =
  | { readonly _tag: "Served"; readonly entry: Journal.StepEntry; readonly reordered: boolean }
  | { readonly _tag: "Diverged"; readonly entry: Journal.StepEntry }
  | { readonly _tag: "Execute"; readonly prior: Journal.StepEntry | undefined }

/** What a call is matched on. */
export interface CallIdentity {
  readonly stepId: string
  readonly name: string
  readonly inputHash: string
  /** Made off the pipeline's own fiber with no explicit key: another occurrence's completion may serve it. */
  readonly concurrent: boolean
}

/**
 * Serve a completion of this identity not yet taken, with the same input. Failing that, and only for a
 * concurrent call: a free completion of the same step and input under another occurrence (concurrent calls
 * that started in another order) — never for an explicit key (it names one entry exactly) nor for
 * sequential code (there, another order is a change of the code). A completion with another input has
 * diverged; anything else executes, with the entry's history (`prior`) if it has one.
 */
export const match = (
  call: CallIdentity,
  entry: Journal.StepEntry | undefined,
  isClaimed: (stepId: string) => boolean,
  /** Only for a concurrent call: another occurrence's free completion of the same step and input. */
  moved: (() => Journal.StepEntry | undefined) | undefined
): Match => {
  const completed = entry !== undefined && Journal.isCompleted(entry)
  if (completed && !isClaimed(call.stepId) && entry.inputHash === call.inputHash) {
    return { _tag: "Served", entry, reordered: false }
  }
  const other = moved?.()
  if (other !== undefined) return { _tag: "Served", entry: other, reordered: true }
  if (completed) return { _tag: "Diverged", entry }
  return { _tag: "Execute", prior: entry }
}

/** The identities and claims of one execution's step calls. */
export class Calls {
  private readonly occurrences = new Map<string, number>()
  /** The step value that owns each name in this run: another value with the same name is refused. */
  private readonly owners = new Map<string, object>()
  /** Journal entries a call of this execution has taken (served or executed). */
  private readonly claimed = new Set<string>()
  private byNameHash: Map<string, Array<Journal.StepEntry>> | undefined
  readonly isClaimed = (stepId: string) => this.claimed.has(stepId)

  constructor(private readonly runId: string, private readonly steps: ReadonlyMap<string, Journal.StepEntry>) {}

  /** The call's step id (`name#occurrence` taken in call order, or `name[key]`), or why it is refused. */
  private identify(step: { readonly name: string }, key: string | undefined): string | DuplicateStepName | Failure.Deterministic {
    const owner = this.owners.get(step.name)
    if (owner === undefined) this.owners.set(step.name, step)
    else if (owner !== step) return this.duplicate(step.name, key)
    if (key === undefined) {
      // The occurrence is taken when the call starts, in program order, never when a step completes.
      const n = this.occurrences.get(step.name) ?? 0
      this.occurrences.set(step.name, n + 1)
      return `${step.name}#${n}`
    }
    const problem = validateName("step key", key)
    if (problem !== undefined) return Failure.deterministic(`step ${step.name}: ${problem}`, { rule: "invalid-key" })
    return `${step.name}[${key}]`
  }

  /**
   * A call's identity and what the journal holds for it, or why it is refused: two steps with one name, an
   * unusable key, an input its Schema refuses, an explicit key used twice.
   */
  resolve<I>(
    step: { readonly name: string; readonly codec: { readonly encodeInput: (input: I) => Either.Either<unknown, ParseResult.ParseError> } },
    input: I,
    key: string | undefined,
    offRoot: boolean
  ):
    | { readonly _tag: "Refused"; readonly error: DuplicateStepName | Failure.Deterministic }
    | { readonly _tag: "Resolved"; readonly stepId: string; readonly inputHash: string; readonly match: Match }
  {
    const stepId = this.identify(step, key)
    if (typeof stepId !== "string") return { _tag: "Refused", error: stepId }
    const encoded = step.codec.encodeInput(input)
    if (Either.isLeft(encoded)) {
      const why = ParseResult.TreeFormatter.formatErrorSync(encoded.left)
      return { _tag: "Refused", error: Failure.deterministic(`the input of step ${stepId} does not match its Schema: ${why}`, { rule: "schema" }) }
    }
    const inputHash = hashJson(toJson(encoded.right))
    const match = this.match({ stepId, name: step.name, inputHash, concurrent: key === undefined && offRoot })
    if (match._tag === "Execute" && key !== undefined && this.claimed.has(stepId)) {
      return {
        _tag: "Refused",
        error: Failure.deterministic(
          `step key "${key}" of step ${step.name} is used twice in run ${this.runId}; keys must be unique per step`,
          { rule: "invalid-key" }
        )
      }
    }
    return { _tag: "Resolved", stepId, inputHash, match }
  }

  private match(call: CallIdentity): Match {
    const moved = call.concurrent ? () => this.unclaimedCompletion(call.name, call.inputHash) : undefined
    return match(call, this.steps.get(call.stepId), this.isClaimed, moved)
  }

  claim(stepId: string): void {
    this.claimed.add(stepId)
  }

  private unclaimedCompletion(name: string, inputHash: string): Journal.StepEntry | undefined {
    if (this.byNameHash === undefined) {
      this.byNameHash = new Map()
      for (const e of this.steps.values()) {
        // Keyed entries (`name[key]`) are matched by their key only.
        if (!Journal.isCompleted(e) || e.stepId.endsWith("]")) continue
        const k = `${e.name}\u0000${e.inputHash}`
        const list = this.byNameHash.get(k)
        if (list === undefined) this.byNameHash.set(k, [e])
        else list.push(e)
      }
    }
    return this.byNameHash.get(`${name}\u0000${inputHash}`)?.find((e) => !this.claimed.has(e.stepId))
  }

  private duplicate(name: string, key: string | undefined): DuplicateStepName {
    const stepId = key === undefined ? `${name}#${this.occurrences.get(name) ?? 0}` : `${name}[${key}]`
    return new DuplicateStepName({
      runId: this.runId,
      name,
      stepId,
      message:
        `two different steps are named "${name}" in run ${this.runId}: their journal entries would be mistaken for each other; give each Step.make its own name (calling one step value twice is fine)`
    })
  }
}
