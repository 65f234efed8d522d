import { describe, expect, it } from "@effect/vitest"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Engine, EventStore, Pipeline, Step } from "@ledgerflow/core"
import { Preflight } from "@ledgerflow/store"
import { Effect, Layer, Schema } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const appDb = () =>
  SqliteClient.layer({ filename: join(mkdtempSync(join(tmpdir(), "ledgerflow-preflight-")), "app.db") })

describe("Preflight.columnsExist", () => {
  it.effect("a missing column fails the run deterministically before any step is paid for", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE reports (id INTEGER PRIMARY KEY, file TEXT)`
      let paid = 0
      const summarize = Step.make({ name: "summarize", output: Schema.String, run: () => Effect.sync(() => (paid++, "s")) })
      const pipeline = Pipeline.make({
        name: "report",
        version: 1,
        input: Schema.Null,
        output: Schema.String,
        preflight: Preflight.columnsExist({ table: "reports", columns: ["file", "region"] }),
        run: () => summarize()
      })
      const error = yield* Effect.flip(Engine.run(pipeline, null))
      expect(error).toMatchObject({ _tag: "Deterministic", rule: "preflight" })
      expect((error as { reason: string }).reason).toContain("table reports has no column region")
      expect(paid).toBe(0)
      yield* sql`ALTER TABLE reports ADD COLUMN region TEXT`
      const other = Pipeline.make({
        name: "report-2",
        version: 1,
        input: Schema.Null,
        output: Schema.String,
        preflight: Preflight.columnsExist({ table: "reports", columns: ["file", "region"] }),
        run: () => summarize()
      })
      expect(yield* Engine.run(other, null)).toBe("s")
      const missingTable = yield* Effect.flip(Preflight.columnsExist({ table: "nope", columns: ["x"] }))
      expect(missingTable.reason).toContain("table nope does not exist")
    }).pipe(Effect.provide(Layer.mergeAll(Engine.layer().pipe(Layer.provideMerge(EventStore.layerMemory)), appDb()))))
})
