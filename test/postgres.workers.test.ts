/**
 * Many worker processes on one Postgres ledger: shared keys executed exactly once, a SIGKILLed worker's
 * run finished by another's `recover` with completed steps served, and dead runs split between
 * recovering workers. Side effects are counted outside the ledger, in a file every step body appends to.
 */
import { describe, expect, it } from "@effect/vitest"
import { Engine } from "@ledgerflow/core"
import { Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { postgres, storeOf } from "./fixtures/ledgers.js"
import { sideEffects } from "./fixtures/seed.js"
import { killedAtInsertRow, runWorker, startWorker } from "./fixtures/spawn.js"

const tempDir = () => mkdtempSync(join(tmpdir(), "ledgerflow-pgworkers-"))

/** Read the ledger from this process, as an operator would. */
const inspect = <A, E>(db: string, body: Effect.Effect<A, E, Engine.Engine>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Engine.layer().pipe(Layer.provideMerge(storeOf(db))))))

const count = <T>(items: ReadonlyArray<T>) => {
  const counts = new Map<T, number>()
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1)
  return counts
}

describe("worker processes on one Postgres ledger", () => {
  it("4 workers × 200 runs over 50 shared keys: every step body of every key executes exactly once, no run is lost", async () => {
    const dir = tempDir()
    const db = await postgres.create()
    const orders = { mode: "many", db, sideEffects: join(dir, "effects.log"), runs: 200, keys: 50, concurrency: 8 }
    const results = await Promise.all([0, 1, 2, 3].map((w) => runWorker({ ...orders, offset: w * 13 })))
    for (const result of results) {
      expect(result.stderr).toBe("")
      // Every start got its key's output: executed here, served from the log, or waited for.
      expect(JSON.parse(result.stdout)).toEqual({ runs: 200, right: 200 })
    }
    const lines = sideEffects(orders.sideEffects)
    const bodies = count(lines.map((l) => l.split(" ").slice(0, 2).join(" ")))
    expect(bodies.size).toBe(50 * 3)
    expect([...bodies.values()].every((n) => n === 1)).toBe(true)
    // The workers really shared the work.
    expect(new Set(lines.map((l) => l.split(" ")[2])).size).toBeGreaterThan(1)
    const runs = await inspect(db, Engine.runs())
    expect(runs).toHaveLength(50)
    expect(runs.every((r) => r.status === "completed")).toBe(true)
  }, 300_000)

  it("a worker SIGKILLed after steps 1–3 is finished by another worker's recover, steps 1–3 served from the log", async () => {
    const db = await postgres.create()
    const { orders } = await killedAtInsertRow(db, tempDir())
    // The dead worker's process is gone from this host: its run is taken at once, lease or not.
    const recovered = await runWorker({ ...orders, mode: "recover" })
    expect(recovered.stderr).toBe("")
    expect(JSON.parse(recovered.stdout).recovered).toEqual([
      expect.objectContaining({ pipeline: "ad-report", action: "resumed", outcome: "ok" })
    ])
    expect(sideEffects(orders.sideEffects)).toEqual(["fetch", "summarize", "write-file", "insert-row", "webhook"])
    await inspect(
      db,
      Effect.gen(function*() {
        const [run] = yield* Engine.runs()
        expect(run).toMatchObject({ status: "completed", leaseToken: 2 })
        const served = (yield* Engine.events(run!.runId)).flatMap((e) => e._tag === "StepsServed" ? [e.stepIds] : [])
        expect(served).toEqual([["fetch#0", "summarize#0", "write-file#0"]])
      })
    )
  }, 180_000)

  it("recover on 3 workers at once over 60 dead runs: each run is taken by exactly one worker and completes once", async () => {
    const dir = tempDir()
    const db = await postgres.create()
    const orders = { db, sideEffects: join(dir, "effects.log"), leaseMs: 1_000, runs: 60 }
    const stalled = startWorker({ ...orders, mode: "stall" }, { LEDGERFLOW_STALL: "1" })
    await new Promise<void>((resolve, reject) => {
      stalled.stdout.on("data", (d) => String(d).includes("stalled") && resolve())
      stalled.on("close", (code) => reject(new Error(`the stalling worker exited (${code}) before its runs were claimed`)))
    })
    stalled.kill("SIGKILL")
    // All three boot (tsx compiles the sources) before the shared start, by when the leases are over.
    const startAt = Date.now() + 8_000
    const workers = await Promise.all([1, 2, 3].map(() => runWorker({ ...orders, mode: "recover", startAt })))
    const taken: Array<string> = []
    for (const worker of workers) {
      expect(worker.stderr).toBe("")
      const recovered: Array<{ runId: string; action: string; outcome: string }> = JSON.parse(worker.stdout).recovered
      taken.push(...recovered.filter((r) => r.action === "resumed" && r.outcome === "ok").map((r) => r.runId))
    }
    expect(taken).toHaveLength(60)
    expect(new Set(taken).size).toBe(60)
    const bodies = count(sideEffects(orders.sideEffects).map((l) => l.split(" ")[0]))
    expect(bodies.size).toBe(60)
    expect([...bodies.values()].every((n) => n === 1)).toBe(true)
    const runs = await inspect(db, Engine.runs({ status: "completed" }))
    expect(runs).toHaveLength(60)
  }, 300_000)
})
