import { describe, expect, it } from "@effect/vitest"
import { Engine, Failure } from "@ledgerflow/core"
import { Effect, Exit, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ledgers } from "./fixtures/ledgers.js"
import { createAppDb, makeSeedPipeline, migrateAppDb, sideEffects } from "./fixtures/seed.js"

for (const ledger of ledgers) {
  const setup = () => {
    const dir = mkdtempSync(join(tmpdir(), "ledgerflow-seed-"))
    const paths = { appDb: join(dir, "app.db"), sideEffects: join(dir, "effects.log") }
    const layer = Engine.layer().pipe(Layer.provideMerge(ledger.layer()))
    return { paths, layer }
  }

  const count = (file: string, name: string) => sideEffects(file).filter((l) => l === name).length

  describe(`the seed incidents, on a real ${ledger.name} store`, () => {
    it.live("a webhook 503 twice then accepted: retried in place, the Claude summary paid once", () => {
      const { layer, paths } = setup()
      createAppDb(paths.appDb, { withRegion: true })
      const pipeline = makeSeedPipeline({ sideEffects: paths.sideEffects, appDb: paths.appDb, webhookFailures: 2 })
      return Effect.gen(function*() {
        const out = yield* Engine.run(pipeline, { account: "acme" })
        expect(out.row).toBe(1)
        expect(count(paths.sideEffects, "summarize")).toBe(1)
        expect(count(paths.sideEffects, "webhook")).toBe(3)
        // A second delivery of the same work is served from the log: nothing runs, nothing is paid.
        expect(yield* Engine.run(pipeline, { account: "acme" })).toEqual(out)
        expect(sideEffects(paths.sideEffects).length).toBe(7)
      }).pipe(Effect.provide(layer))
    })

    it.live("a real `no such column` fails the run deterministically after one attempt; 21 redeliveries execute nothing", () => {
      const { layer, paths } = setup()
      createAppDb(paths.appDb, { withRegion: false })
      const pipeline = makeSeedPipeline({ sideEffects: paths.sideEffects, appDb: paths.appDb })
      return Effect.gen(function*() {
        const first = yield* Effect.exit(Engine.run(pipeline, { account: "acme" }, { key: "batch-2026-11-25" }))
        expect(Exit.isFailure(first)).toBe(true)
        const failure = yield* Effect.flip(Engine.run(pipeline, { account: "acme" }, { key: "batch-2026-11-25" }))
        expect(Failure.isDeterministic(failure)).toBe(true)
        expect((failure as Failure.Deterministic).cause?.message).toContain("has no column named region")
        expect((failure as Failure.Deterministic).rule).toBe("sqlite-code")
        for (let i = 0; i < 20; i++) {
          expect(yield* Effect.flip(Engine.run(pipeline, { account: "acme" }, { key: "batch-2026-11-25" }))).toEqual(failure)
        }
        expect(sideEffects(paths.sideEffects)).toEqual(["fetch", "summarize", "write-file", "insert-row"])
        // After the migration, an explicit resume finishes the run; the summary is served from the log.
        migrateAppDb(paths.appDb)
        const [run] = yield* Engine.runs({ key: "batch-2026-11-25" })
        const out = yield* Engine.resume(pipeline, run!.runId)
        expect(out.row).toBe(1)
        expect(count(paths.sideEffects, "summarize")).toBe(1)
        expect(count(paths.sideEffects, "insert-row")).toBe(2)
      }).pipe(Effect.provide(layer))
    })
  })
}
