/**
 * Attempt count and backoff across a real crash: a worker process fails a step Transient and, while it
 * waits out the 30 s backoff, is SIGKILLed; this process takes the run over. The log, not the process,
 * holds the attempt count, the scheduled retry time and the retry budget.
 */
import { describe, expect, it } from "@effect/vitest"
import { Engine, type Event } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, TestClock, TestServices } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { withTime } from "../packages/core/test/fixtures/clock.js"
import { makeBackoffPipeline, webhookUrl } from "./fixtures/backoff.js"
import { startWorker } from "./fixtures/spawn.js"
import { lines } from "./fixtures/world.js"

const failedAttempts = (key: string) =>
  Effect.gen(function*() {
    const [run] = yield* Engine.runs({ key })
    if (run === undefined) return []
    const events = yield* Engine.events(run.runId)
    return events.flatMap((e): Array<Event.StepAttemptFailed> => e._tag === "StepAttemptFailed" ? [e] : [])
  })

describe("a step's retries across a real process crash", () => {
  it.effect("a worker SIGKILLed mid-backoff: the taking-over process numbers on, waits for the scheduled retry, and stops at maxAttempts counting the dead worker's attempt", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "ledgerflow-backoff-"))
      const db = join(dir, "ledger.db")
      const attempts = join(dir, "attempts.log")
      const pipeline = makeBackoffPipeline(attempts)
      const layer = Engine.layer({ owner: "taker" }).pipe(Layer.provideMerge(SqliteStore.layer({ filename: db })))
      yield* Effect.gen(function*() {
        // The store exists (this layer made it) before the worker opens it.
        const worker = startWorker({ mode: "backoff", db, sideEffects: attempts, key: "acme" })
        worker.stdin.end()
        let stderr = ""
        worker.stderr.on("data", (d) => (stderr += d))
        worker.stdout.resume()
        let exited = false
        const closed = new Promise<NodeJS.Signals | null>((resolve) =>
          worker.on("close", (_code, signal) => {
            exited = true
            resolve(signal)
          })
        )
        // Poll the journal (a few real milliseconds between looks; the TestClock stays put) until the worker's
        // first attempt has failed with the delay it will wait out.
        let seen: Array<Event.StepAttemptFailed> = []
        while ((seen = yield* failedAttempts("acme")).length === 0) {
          expect(exited, `the worker ended before its first attempt failed: ${stderr}`).toBe(false)
          yield* TestServices.provideLive(Effect.sleep("20 millis"))
        }
        worker.kill("SIGKILL")
        expect(yield* Effect.promise(() => closed)).toBe("SIGKILL")
        const [first] = seen
        expect(seen).toHaveLength(1)
        expect(first).toMatchObject({ attempt: 1, retryDelayMs: 30_000 })
        const retryAt = first!.at + first!.retryDelayMs!

        // The present, mid-backoff: the dead worker's lease (30 s) has not run out, its process is gone.
        const takenAt = Date.now()
        expect(takenAt).toBeLessThan(retryAt)
        yield* TestClock.setTime(takenAt)
        const failure = yield* Effect.flip(withTime(Engine.run(pipeline, webhookUrl, { key: "acme" }), { background: 1 }))
        expect(failure).toMatchObject({ _tag: "Transient", rule: "http-status" })

        const failed = yield* failedAttempts("acme")
        // Numbered on from the dead worker's attempt: 2 and 3 here, not 1 again.
        expect(failed.map((e) => e.attempt)).toEqual([1, 2, 3])
        const [, second, third] = failed
        // The retry the dead worker scheduled is kept: not before retryAt, and not a fresh 30 s from the takeover.
        expect(second!.startedAt).toBeGreaterThanOrEqual(retryAt)
        expect(second!.startedAt).toBeLessThan(takenAt + 30_000)
        // The budget (maxAttempts 3) counts the dead worker's attempt: this process made two, then gave up.
        expect(second!.retryDelayMs).toBe(30_000)
        expect(third!.startedAt).toBeGreaterThanOrEqual(second!.at + 30_000)
        expect(third!.retryDelayMs).toBeUndefined()
        expect(third!.giveUp).toBe("attempt cap reached (3 of 3)")
        // Who made which attempt: the worker the first, this process the next two.
        const workerPid = String(worker.pid)
        const here = String(process.pid)
        expect(lines(attempts)).toEqual([`1 ${workerPid}`, `2 ${here}`, `3 ${here}`])
        const [run] = yield* Engine.runs({ key: "acme" })
        expect(run!.status).toBe("failed")
      }).pipe(Effect.provide(layer))
    }), 120_000)
})
