import { describe, expect, it } from "@effect/vitest"
import { RunError, Step } from "@ledgerflow/core"
import { BadInput, Failed, fromError } from "../src/internal/exit.js"

describe("the CLI's one line for the engine's refusals: what was wrong and what to do", () => {
  it("KeyConflict is bad input (nothing ran); PastPivot and DuplicateStepName fail with what to do next", () => {
    const conflict = fromError(new RunError.KeyConflict({
      pipeline: "cpc-report",
      key: "acme-2026-12",
      runId: "run_1",
      storedInputHash: "aaa",
      inputHash: "bbb",
      message: "the key \"acme-2026-12\" of pipeline cpc-report belongs to run run_1, started with another input"
    }))
    expect(conflict.code).toBe(BadInput)
    expect(conflict.message).toMatch(/^the key "acme-2026-12" .* run run_1/)
    const pivot = fromError(new RunError.PastPivot({
      runId: "run_2",
      stepId: "send-email#0",
      status: "failed",
      message: "run run_2 is past its pivot: irreversible step send-email#0 completed"
    }))
    expect(pivot.code).toBe(Failed)
    expect(pivot.message).toBe("run run_2 is past its pivot: irreversible step send-email#0 completed; `ledgerflow resume` it instead")
    const duplicate = fromError(new Step.DuplicateStepName({ runId: "run_3", name: "fetch", stepId: "fetch#1", message: "two different steps are named \"fetch\"" }))
    expect(duplicate.code).toBe(Failed)
    expect(duplicate.message).toMatch(/rename one of the steps, then `ledgerflow resume` the run$/)
  })
})
