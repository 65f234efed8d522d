import { describe, expect, it } from "@effect/vitest"
import { Engine, EventStore, Journal } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, TestClock } from "effect"
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { runWorker } from "./fixtures/spawn.js"
import { createWorld, lines, makeWorldPipeline, paths, rows } from "./fixtures/world.js"

const steps = ["fetch", "summarize", "write-file", "insert-row", "send-email"] as const
const points = [...steps.flatMap((s) => [`before:${s}`, `during:${s}`]), "before:complete"]

/** Kill a worker at `point`, then let this process recover the run as `how` says; return the world. */
const crashThenRecover = (point: string, how: "resume" | "rollback") =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "ledgerflow-crash-"))
    createWorld(dir)
    const db = join(dir, "ledger.db")
    const killed = yield* Effect.promise(() => runWorker({ mode: "crash", db, dir, killAt: point, key: "crash" }))
    expect(killed.signal, killed.stderr).toBe("SIGKILL")
    // The present: the dead worker's lease (30 s) has not run out, but its process is gone from this host,
    // so its runs are recovered at once.
    yield* TestClock.setTime(Date.now())
    const pipeline = makeWorldPipeline({ dir }, how)
    const layer = Engine.layer({ owner: "recoverer" }).pipe(Layer.provideMerge(SqliteStore.layer({ filename: db })))
    return yield* Effect.gen(function*() {
      const recovered = yield* Engine.recover([pipeline])
      const [run] = yield* Engine.runs()
      const stored = yield* Effect.flatMap(EventStore.EventStore, (store) => store.readEvents(run!.runId))
      const state = yield* Effect.flatMap(Engine.Engine, (engine) => engine.state(run!.runId))
      return { dir, run: run!, seqs: stored.map((e) => e.seq), state, recovered }
    }).pipe(Effect.provide(layer))
  })

const noGaps = (seqs: ReadonlyArray<number>) => expect(seqs).toEqual(seqs.map((_, i) => i + 1))

/**
 * The step bodies each process ran when a worker is killed at `point` and this process resumes: the worker
 * ran the steps before it (and the one it was in, for "during"); the resume runs exactly the steps the
 * journal lacks — the one in flight again, except the e-mail, whose reconcile finds it sent — and nothing
 * the journal holds.
 */
const expectedBodies = (point: string) => {
  const [when, step] = point.split(":") as [string, string]
  const at = step === "complete" ? steps.length : steps.indexOf(step as (typeof steps)[number])
  const worker = steps.slice(0, when === "during" ? at + 1 : at)
  const resumed = point === "during:send-email" ? [] : steps.slice(at)
  return { worker, resumed }
}

/** Who ran which body, from bodies.log ("name pid" a line): this process, or the killed worker. */
const bodiesRun = (dir: string) => {
  const ran = lines(paths(dir).bodies).map((l) => l.split(" ") as [string, string])
  const here = String(process.pid)
  return {
    worker: ran.filter(([, pid]) => pid !== here).map(([name]) => name),
    resumed: ran.filter(([, pid]) => pid === here).map(([name]) => name)
  }
}

describe("crash matrix: a worker SIGKILLed at every step boundary and mid-body", () => {
  for (const point of points) {
    it.effect(`killed ${point}, resumed: every effect exactly once, the summary paid once, the log gapless`, () =>
      Effect.gen(function*() {
        const { dir, recovered, run, seqs, state } = yield* crashThenRecover(point, "resume")
        const p = paths(dir)
        expect(recovered.map((r) => [r.action, r.outcome, r.status])).toEqual([["resumed", "ok", "completed"]])
        expect(bodiesRun(dir)).toEqual(expectedBodies(point))
        expect(run.status).toBe("completed")
        expect(state.status).toBe("completed")
        expect(lines(p.paid)).toEqual(["summary"])
        expect(existsSync(p.report)).toBe(true)
        expect(rows(dir)).toBe(1)
        expect(lines(p.mailbox).length).toBe(1)
        noGaps(seqs)
        expect(state.events).toBe(seqs.length)
      }), 60_000)
  }

  for (const point of points) {
    it.effect(`killed ${point}, onCrash rollback: rolled back before the e-mail, resumed to completion past it, the e-mail sent once`, () =>
      Effect.gen(function*() {
        const { dir, recovered, run, seqs, state } = yield* crashThenRecover(point, "rollback")
        const p = paths(dir)
        const mailed = lines(p.mailbox).length
        expect(mailed).toBeLessThanOrEqual(1)
        expect(lines(p.paid).length).toBeLessThanOrEqual(1)
        if (mailed === 1) {
          // Past the pivot: the run only goes forward, whatever onCrash says; recovery says so, and the run
          // really completed (no invented failure, no parked run).
          expect(recovered.map((r) => [r.action, r.outcome, r.status])).toEqual([["resumed", "ok", "completed"]])
          expect(run.status).toBe("completed")
          expect(existsSync(p.report)).toBe(true)
          expect(rows(dir)).toBe(1)
        } else {
          expect(recovered.map((r) => [r.action, r.outcome, r.status])).toEqual([["rolled back", "ok", "rolled_back"]])
          expect(run.status).toBe("rolled_back")
          expect(existsSync(p.report)).toBe(false)
          expect(rows(dir)).toBe(0)
          // The paid summary is kept in the log for the next attempt.
          if (lines(p.paid).length === 1) {
            expect(Journal.isCompleted(state.steps.get("summarize#0")!)).toBe(true)
          }
        }
        noGaps(seqs)
        expect(state.status).toBe(run.status)
      }), 60_000)
  }
})
