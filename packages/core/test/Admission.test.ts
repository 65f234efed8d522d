/**
 * Admission as a rule: what a start by key does with the run its key already has (`decideStart`), over any
 * run record, input hash, lease state and `ifRunning`.
 */
import { describe, expect, it } from "@effect/vitest"
import { EventStore } from "@ledgerflow/core"
import * as fc from "effect/FastCheck"
import { type Decision, decideStart, type StartFacts } from "../src/internal/admission.js"

const statuses: ReadonlyArray<EventStore.RunStatus> = EventStore.RunStatus.literals

const hash = fc.constantFrom("h1", "h2", "h3")

const run = fc.record({
  status: fc.constantFrom(...statuses),
  failureClass: fc.constantFrom<"transient" | "deterministic" | undefined>("transient", "deterministic", undefined),
  owner: fc.constantFrom("host-a/1.1/x", "host-b/2.2/y")
}).map((r): EventStore.RunRecord => ({
  runId: "run_1",
  pipeline: "p",
  version: "1",
  key: "k",
  status: r.status,
  createdAt: 0,
  updatedAt: 0,
  lastSeq: 2,
  owner: r.owner,
  leaseToken: 1,
  leaseExpiresAt: 1000,
  deliveries: 1,
  lastDeliveredAt: 0,
  ...(r.failureClass !== undefined ? { failureClass: r.failureClass } : {})
}))

const facts = fc.record({
  existing: fc.option(run, { nil: undefined }),
  storedInputHash: fc.option(hash, { nil: undefined }),
  inputHash: hash,
  lapse: fc.option(fc.record({ why: fc.constant("the lease expired"), timedOut: fc.boolean() }), { nil: undefined }),
  ifRunning: fc.constantFrom<"fail" | "wait">("fail", "wait"),
  owner: fc.constant("me")
}) satisfies fc.Arbitrary<StartFacts>

/** What no rule may answer for these facts, whatever else holds. */
const neverRuns = (d: Decision) => d._tag !== "Create" && d._tag !== "TakeOver"

describe("decideStart", () => {
  it.prop("a key without a run creates it; a key with one never creates another", [facts], ([f]) => {
    expect(decideStart(f)._tag === "Create").toBe(f.existing === undefined)
  })

  it.prop("a key bound to another input is refused, whatever the run's state, and runs nothing", [facts], ([f]) => {
    fc.pre(f.existing !== undefined)
    const d = decideStart(f)
    const conflict = f.storedInputHash !== undefined && f.storedInputHash !== f.inputHash
    expect(d._tag === "Conflict").toBe(conflict)
    if (conflict) expect(d).toEqual({ _tag: "Conflict", storedInputHash: f.storedInputHash })
  })

  it.prop("a completed run, or one that failed deterministically, is answered from the log: nothing runs again", [facts], ([f]) => {
    const r = f.existing
    fc.pre(r !== undefined && (f.storedInputHash === undefined || f.storedInputHash === f.inputHash))
    const finished = r.status === "completed" ||
      ((r.status === "failed" || r.status === "rolled_back") && r.failureClass === "deterministic")
    expect(decideStart(f)._tag === "Return").toBe(finished)
  })

  it.prop("a run held under a live lease is never taken over: the caller waits (if it asked to) or is told it is in progress", [facts], ([f]) => {
    const r = f.existing
    fc.pre(r !== undefined && f.lapse === undefined && (r.status === "running" || r.status === "compensating"))
    fc.pre(f.storedInputHash === undefined || f.storedInputHash === f.inputHash)
    const d = decideStart(f)
    expect(neverRuns(d)).toBe(true)
    // Waiting is for a running run; an undo in progress is reported, never waited on by a start.
    expect(d._tag).toBe(r.status === "running" && f.ifRunning === "wait" ? "Wait" : "InProgress")
  })

  it.prop("a run whose lease lapsed is taken over (a rollback finished first), the store re-checking an expiry", [facts], ([f]) => {
    const r = f.existing
    fc.pre(r !== undefined && f.lapse !== undefined && (r.status === "running" || r.status === "compensating"))
    fc.pre(f.storedInputHash === undefined || f.storedInputHash === f.inputHash)
    const d = decideStart(f)
    if (r.status === "compensating") expect(d).toEqual({ _tag: "FinishRollback" })
    else expect(d).toMatchObject({ _tag: "TakeOver", requireExpired: f.lapse!.timedOut })
  })

  it.prop("a run that needs a person, or was cancelled, is never continued by a start", [facts], ([f]) => {
    const r = f.existing
    fc.pre(r !== undefined && (r.status === "needs_attention" || r.status === "cancelled"))
    fc.pre(f.storedInputHash === undefined || f.storedInputHash === f.inputHash)
    expect(decideStart(f)).toEqual({ _tag: "NotResumable" })
  })

  it.prop("only a transient failure is retried by a new start, without waiting for a lease", [facts], ([f]) => {
    const d = decideStart(f)
    if (d._tag !== "TakeOver") return
    const r = f.existing!
    if (r.status === "running") expect(f.lapse).toBeDefined()
    else {
      expect(["failed", "rolled_back"]).toContain(r.status)
      expect(r.failureClass).not.toBe("deterministic")
      expect(d.requireExpired).toBe(false)
    }
  })
})
