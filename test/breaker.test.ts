import { describe, expect, it } from "@effect/vitest"
import { Engine, Failure } from "@ledgerflow/core"
import { Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ledgers } from "./fixtures/ledgers.js"
import { createAppDb, makeSeedPipeline, migrateAppDb, sideEffects } from "./fixtures/seed.js"

for (const ledger of ledgers) {
  describe(`the storm breaker, on the seed's retry storm, on ${ledger.name}`, () => {
    it.effect("21 redeliveries with new keys of a real `no column` failure: 3 runs execute, 18 get CircuitOpen; after the migration and a version bump the next run completes", () => {
      const dir = mkdtempSync(join(tmpdir(), "ledgerflow-breaker-"))
      const paths = { appDb: join(dir, "app.db"), sideEffects: join(dir, "effects.log") }
      createAppDb(paths.appDb, { withRegion: false })
      const layer = Engine.layer().pipe(Layer.provideMerge(ledger.layer()))
      return Effect.gen(function*() {
        const v1 = makeSeedPipeline({ ...paths })
        const outcomes: Array<string> = []
        for (let delivery = 1; delivery <= 21; delivery++) {
          const outcome = yield* Effect.either(Engine.run(v1, { account: "acme" }, { key: `delivery-${delivery}` }))
          outcomes.push(outcome._tag === "Right" ? "ok" : outcome.left._tag)
          if (delivery === 1 && outcome._tag === "Left" && Failure.isFailure(outcome.left)) {
            expect(outcome.left.cause?.message).toContain("has no column named region")
          }
        }
        expect(outcomes).toEqual([
          ...Array.from({ length: 3 }, () => "Deterministic"),
          ...Array.from({ length: 18 }, () => "CircuitOpen")
        ])
        // Three executions paid for three summaries, not 21.
        expect(sideEffects(paths.sideEffects).filter((l) => l === "summarize").length).toBe(3)
        const open = yield* Effect.flip(Engine.run(v1, { account: "acme" }, { key: "delivery-22" }))
        expect(open._tag).toBe("CircuitOpen")
        migrateAppDb(paths.appDb)
        const v2 = makeSeedPipeline({ ...paths, version: 2 })
        expect((yield* Engine.run(v2, { account: "acme" }, { key: "delivery-23" })).row).toBe(1)
      }).pipe(Effect.provide(layer))
    })
  })
}
