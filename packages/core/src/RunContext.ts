/**
 * The run a pipeline's code is executing in. Steps need it (they journal into it); pipeline code may read
 * it to learn its run id and key. Only the engine provides it.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { Definition, StepError } from "./StepDefinition.js"

export interface RunContextService {
  readonly runId: string
  readonly key: string
  readonly pipeline: string
  /**
   * `execute` for runs and resumes; `replay` re-executes against the log with no side effects;
   * `rollback` serves from the log to rebuild the compensations to run.
   */
  readonly mode: "execute" | "replay" | "rollback"
  /**
   * Call a step in this run: served from the journal when it completed before, else executed (with its
   * retries) and journaled. `key` gives the call an explicit identity (`name[key]`) instead of its
   * occurrence (`name#n`). What `step(input)` does.
   */
  readonly call: <I, O, E, R>(step: Definition<I, O, E, R>, input: I, key?: string) => Effect.Effect<O, StepError, R>
}

export class RunContext extends Context.Tag("@ledgerflow/core/RunContext")<RunContext, RunContextService>() {}
