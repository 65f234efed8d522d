import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore } from "@ledgerflow/core"
import { Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ledgers, storeOf } from "./fixtures/ledgers.js"
import { type Finished, startWorker } from "./fixtures/spawn.js"
import { createWorld, lines, paths } from "./fixtures/world.js"

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
      a.kill("SIGSTOP") // inside write-file's body, with fetch and summarize journaled
      const b = await finished(startWorker(orders))
      expect(b.stderr).toBe("")
      expect(JSON.parse(b.stdout).out).toBe("40 clicks")
      a.kill("SIGCONT")
      const aResult = await aDone
      // A wakes up, finishes the body it was in, and is refused when it tries to journal it.
      expect(aResult.code).toBe(1)
      expect(aResult.stderr).toMatch(/LeaseLost|token 1 is stale|lease/)
      const p = paths(dir)
      const bodies = lines(p.bodies).map((l) => l.split(" "))
      const pidA = String(a.pid)
      // A ran fetch, summarize and the start of write-file; nothing after its pause.
      expect(bodies.filter(([, pid]) => pid === pidA).map(([name]) => name)).toEqual(["fetch", "summarize", "write-file"])
      expect(lines(p.mailbox).length).toBe(1)
      expect(lines(p.paid)).toEqual(["summary"])
      const layer = Engine.layer().pipe(Layer.provideMerge(storeOf(db)))
      await Effect.runPromise(
        Effect.gen(function*() {
          const [run] = yield* Engine.runs()
          expect(run).toMatchObject({ status: "completed", leaseToken: 2 })
          const stored = yield* Effect.flatMap(EventStore.EventStore, (s) => s.readEvents(run!.runId))
          expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1))
          const tokens = (yield* Engine.events(run!.runId)).flatMap((e) => (e._tag === "LeaseTaken" ? [e.token] : []))
          expect(tokens).toEqual([1, 2])
        }).pipe(Effect.provide(layer))
      )
    }, 120_000)
  })
}
