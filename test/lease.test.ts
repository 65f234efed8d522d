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
