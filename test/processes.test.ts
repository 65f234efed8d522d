import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { sideEffects } from "./fixtures/seed.js"
import { type Finished, killedAtInsertRow, runWorker, startWorker } from "./fixtures/spawn.js"

const tempDir = () => mkdtempSync(join(tmpdir(), "ledgerflow-proc-"))

type Worker = ReturnType<typeof startWorker>

/**
 * Run race workers round by round: once every worker has said "ready r" (booted, and done with the round
 * before), release them all at once with a line on their stdin. No wall clock decides when a round starts.
 * Their results, with the "ready" lines left out of stdout.
 */
const race = (a: Worker, b: Worker): Promise<[Finished, Finished]> => {
  const workers = [a, b]
  const readyFor = new Map<string, number>()
  const watch = (child: Worker) =>
    new Promise<Finished>((resolve) => {
      let stdout = ""
      let stderr = ""
      child.stderr.on("data", (d) => (stderr += d))
      createInterface({ input: child.stdout }).on("line", (line) => {
        if (!line.startsWith("ready ")) return void (stdout += `${line}\n`)
        const ready = (readyFor.get(line) ?? 0) + 1
        readyFor.set(line, ready)
        if (ready === workers.length) for (const w of workers) w.stdin.write("go\n")
      })
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    })
  return Promise.all([watch(a), watch(b)])
}

describe("across OS processes, on one SQLite file", () => {
  it("two processes start the same key at the same moment, 50 rounds: each round's step body runs exactly once", async () => {
    const dir = tempDir()
    const orders = { mode: "race", db: join(dir, "ledger.db"), sideEffects: join(dir, "effects.log"), rounds: 50 }
    const [a, b] = await race(startWorker(orders), startWorker(orders))
    expect(a.stderr + b.stderr).toBe("")
    const outcomes = [JSON.parse(a.stdout).outcomes, JSON.parse(b.stdout).outcomes] as Array<Array<string>>
    const lines = sideEffects(orders.sideEffects)
    for (let r = 0; r < 50; r++) {
      expect(lines.filter((l) => l.startsWith(`round-${r} `)).length).toBe(1)
      // Each worker either got the output (it ran the step, or the run had completed) or was told the
      // other one holds the run; nobody failed.
      for (const o of outcomes) expect(["ok", "RunInProgress"]).toContain(o[r])
    }
  }, 120_000)

  it("a process killed after steps 1–3 is resumed by a new process with steps 1–3 served from the log", async () => {
    const dir = tempDir()
    // The default lease (30 s): the new process must not wait it out.
    const { killed, orders } = await killedAtInsertRow(join(dir, "ledger.db"), dir)
    // A new process starts the same key: the dead worker's process is gone from this host, so it takes the
    // run over at once (not after the 30 s lease) and serves the three completed steps from the log.
    const resumed = await runWorker(orders)
    expect(resumed.stderr).toBe("")
    expect(JSON.parse(resumed.stdout).out).toEqual({ file: "reports/9.txt", row: 1 })
    expect(sideEffects(orders.sideEffects)).toEqual(["fetch", "summarize", "write-file", "insert-row", "webhook"])
    const ledger = new Database(orders.db, { readonly: true })
    const reasons = ledger.prepare<[], { reason: string }>(
      "SELECT data ->> '$.reason' AS reason FROM events WHERE type = 'RunResumed'"
    ).all().map((r) => r.reason)
    ledger.close()
    expect(reasons).toEqual([expect.stringMatching(new RegExp(`process ${killed.pid} on this host no longer exists`))])
  }, 120_000)
})
