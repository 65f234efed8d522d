/**
 * The run a pipeline's code is executing in. Steps need it (they journal into it); pipeline code may read
 * it to learn its run id and key. Only the engine provides it.
 */
import * as Context from "effect/Context"
import type { StepRunner } from "./internal/runner.js"

export interface RunContextService {
  readonly runId: string
  readonly key: string
  readonly pipeline: string
  /**
   * `execute` for runs and resumes; `replay` re-executes against the log with no side effects;
   * `rollback` serves from the log to rebuild the compensations to run.
   */
  readonly mode: "execute" | "replay" | "rollback"
  /** The journal the steps of this run read and append to (engine internals). */
  readonly runner: StepRunner
}

export class RunContext extends Context.Tag("@ledgerflow/core/RunContext")<RunContext, RunContextService>() {}
