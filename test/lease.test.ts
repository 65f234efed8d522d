import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore } from "@ledgerflow/core"
import { Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { ledgers, postgres, storeOf } from "./fixtures/ledgers.js"
import { type Finished, startWorker } from "./fixtures/spawn.js"
import { createWorld, lines, makeWorldPipeline, paths } from "./fixtures/world.js"

const finished = (child: ReturnType<typeof startWorker>): Promise<Finished> =>
  new Promise((resolve) => {
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

const reached = (child: ReturnType<typeof startWorker>, line: string): Promise<void> =>
  new Promise((resolve) => {
    const onData = (d: Buffer) => {
      if (String(d).includes(line)) {
        child.stdout.off("data", onData)
        resolve()
      }
    }
    child.stdout.on("data", onData)
  })

for (const ledger of ledgers) {
  describe(`leases and fencing, across processes, on ${ledger.name}`, () => {
    it("a worker paused (SIGSTOP) past its lease is taken over; when it wakes, its appends are refused and it stops without side effects", async () => {
      const dir = mkdtempSync(join(tmpdir(), "ledgerflow-lease-"))
      createWorld(dir)
      const db = await ledger.create(dir)
      const orders = { mode: "lease", db, dir, key: "lease", leaseMs: 1_500 }
      const a = startWorker(orders, { LEDGERFLOW_PAUSE: "1" })
      const aDone = finished(a)
      await reached(a, "paused-point")
      // Inside write-file's body, with fetch and summarize journaled; A waits on its stdin, so it cannot go
      // on before it is stopped.
      a.kill("SIGSTOP")
      const bChild = startWorker(orders)
      bChild.stdin.end()
      const b = await finished(bChild)
      expect(b.stderr).toBe("")
      expect(JSON.parse(b.stdout).out).toBe("40 clicks")
      a.kill("SIGCONT")
      a.stdin.end("go\n")
      const aResult = await aDone
      // A wakes up past its lease and is refused: by its keeper's renewal or when it journals its body.
      expect(aResult.code).toBe(1)
      const refusal = JSON.parse(aResult.stderr)
      const p = paths(dir)
      const bodies = lines(p.bodies).map((l) => l.split(" "))
      const ran = (pid: number | undefined) => bodies.filter(([, by]) => by === String(pid)).map(([name]) => name)
      // A ran fetch, summarize and the start of write-file; nothing after its pause.
      expect(ran(a.pid)).toEqual(["fetch", "summarize", "write-file"])
      // B served fetch and summarize from the log and ran the step A was in, then the rest, once.
      expect(ran(bChild.pid)).toEqual(["write-file", "insert-row", "send-email"])
      expect(bodies).toHaveLength(6)
      expect(lines(p.mailbox).length).toBe(1)
      expect(lines(p.paid)).toEqual(["summary"])
      const layer = Engine.layer().pipe(Layer.provideMerge(storeOf(db)))
      await Effect.runPromise(
        Effect.gen(function*() {
          const [run] = yield* Engine.runs()
          expect(run).toMatchObject({ status: "completed", leaseToken: 2 })
          expect(refusal).toMatchObject({ _tag: "LeaseLost", runId: run!.runId, token: 1 })
          expect(refusal.message).toMatch(/token 1 is stale/)
          const stored = yield* Effect.flatMap(EventStore.EventStore, (s) => s.readEvents(run!.runId))
          expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1))
          const tokens = (yield* Engine.events(run!.runId)).flatMap((e) => (e._tag === "LeaseTaken" ? [e.token] : []))
          expect(tokens).toEqual([1, 2])
        }).pipe(Effect.provide(layer))
      )
    }, 120_000)
  })
}

describe("waiting for a run another process holds, on Postgres", () => {
  it("a start with ifRunning \"wait\" on a run a child process holds returns the child's output once the child completes it (woken by its NOTIFY)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ledgerflow-wait-"))
    createWorld(dir)
    const db = await postgres.create()
    // An owner of another machine, as far as this process can tell, and a 10-minute lease: nothing but the
    // child's NOTIFY can end the wait before this test's timeout (no look at the owner's pid, no lease end).
    const child = startWorker({ mode: "lease", db, dir, key: "held", leaseMs: 600_000, owner: "worker-elsewhere/1" }, { LEDGERFLOW_PAUSE: "1" })
    const childDone = finished(child)
    await reached(child, "paused-point")
    const layer = Engine.layer().pipe(Layer.provideMerge(storeOf(db)))
    const waiting = Effect.runPromise(
      Engine.run(makeWorldPipeline({ dir }), "acme", { key: "held", ifRunning: "wait" }).pipe(Effect.provide(layer))
    )
    // The start has found the run (its delivery is counted) and waits on it; only then may the child go on.
    const client = new pg.Client({ connectionString: db })
    await client.connect()
    try {
      const deliveries = async () => (await client.query("SELECT deliveries FROM ledgerflow.runs WHERE key = 'held'")).rows[0]?.deliveries
      while (Number(await deliveries()) < 2) await new Promise((resolve) => setTimeout(resolve, 20))
    } finally {
      await client.end()
    }
    child.stdin.end("go\n")
    const [out, childResult] = await Promise.all([waiting, childDone])
    expect(childResult.stderr).toBe("")
    // Its last line is its result (the first says it reached its pause).
    expect(JSON.parse(childResult.stdout.trim().split("\n").at(-1) ?? "").out).toBe("40 clicks")
    expect(out).toBe("40 clicks")
    // Every body ran once, in the child: the waiter was answered from the run's stored output.
    const bodies = lines(paths(dir).bodies).map((l) => l.split(" "))
    expect(bodies.map(([name]) => name)).toEqual(["fetch", "summarize", "write-file", "insert-row", "send-email"])
    expect(bodies.every(([, pid]) => pid === String(child.pid))).toBe(true)
  }, 120_000)
})
