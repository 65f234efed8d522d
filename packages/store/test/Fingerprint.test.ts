/**
 * Failure fingerprints from real `@effect/sql-sqlite-node` errors: a `SqlError` ("Failed to prepare
 * statement") wrapping the driver's `SqliteError`. The storm breaker groups runs by fingerprint, so two
 * different errors sharing one would refuse unrelated work (issue 12, item 5).
 */
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Engine, Failure, Pipeline, Step } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-fingerprint-"))
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))

/** A pipeline whose one step runs `query(n)` against the app's own database. */
const makePipeline = (name: string, query: (n: number) => string) =>
  Pipeline.make({
    name,
    version: 1,
    input: Schema.Number,
    output: Schema.Number,
    run: Step.make({
      name: "insert-row",
      input: Schema.Number,
      output: Schema.Number,
      run: (n) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(query(n))).pipe(Effect.as(n))
    })
  })

const setup = () => {
  const file = (name: string) => path.join(directory, `${name}-${Math.random().toString(36).slice(2)}.db`)
  const app = SqliteClient.layer({ filename: file("app") })
  const engine = Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: file("ledger") })))
  return { app, engine }
}

/** The run's stored fingerprint, after it failed. */
const failedFingerprint = <E, R>(pipeline: Pipeline.Pipeline<number, number, E, R>, n: number, key: string) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(Engine.run(pipeline, n, { key }))
    expect(Failure.isDeterministic(error), String(error)).toBe(true)
    const [run] = yield* Engine.runs({ key })
    return { fingerprint: run!.failureFingerprint!, error }
  })

describe("failure fingerprints of real @effect/sql errors", () => {
  it.effect("a missing column, a missing table and a missing column in an insert get three fingerprints, each from the driver's message, not the SqlError's", () => {
    const { app, engine } = setup()
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
      const insert = yield* failedFingerprint(
        makePipeline("insert", (n) => `INSERT INTO t (id, missing_col) VALUES (${n}, 'x')`),
        1,
        "a"
      )
      const table = yield* failedFingerprint(makePipeline("table", (n) => `SELECT * FROM nosuchtable WHERE id = ${n}`), 1, "b")
      const column = yield* failedFingerprint(makePipeline("column", (n) => `SELECT nosuchcol FROM t WHERE id = ${n}`), 1, "c")
      const prints = [insert, table, column].map((f) => f.fingerprint)
      expect(new Set(prints).size).toBe(3)
      for (const print of prints) expect(print).not.toContain("Failed to prepare statement")
      expect(insert.fingerprint).toContain("has no column named missing_col")
      expect(table.fingerprint).toContain("no such table: nosuchtable")
      expect(column.fingerprint).toContain("no such column: nosuchcol")
      // The failure's cause is the driver's error, with its code.
      expect(Failure.isFailure(table.error) && table.error.cause).toMatchObject({
        name: "SqliteError",
        code: "SQLITE_ERROR",
        message: "no such table: nosuchtable"
      })
    }).pipe(Effect.provide(Layer.merge(app, engine)))
  })

  it.effect("the same error in 21 runs, with other ids and values each time, always has one fingerprint; another error after them is not refused by the breaker", () => {
    const { app, engine } = setup()
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
      const storm = Pipeline.make({
        name: "storm",
        version: 1,
        input: Schema.Number,
        output: Schema.Number,
        breaker: false,
        run: Step.make({
          name: "insert-row",
          input: Schema.Number,
          output: Schema.Number,
          run: (n) =>
            Effect.flatMap(
              SqlClient.SqlClient,
              (sql) => sql.unsafe(`INSERT INTO t (id, v, missing_col) VALUES (${n}, 'value ${n} at 2026-12-0${n % 9 + 1}T10:00:00Z', ${n * 7})`)
            ).pipe(Effect.as(n))
        })
      })
      const prints = new Set<string>()
      for (let n = 1; n <= 21; n++) prints.add((yield* failedFingerprint(storm, n, `storm-${n}`)).fingerprint)
      expect(prints.size).toBe(1)
      // Three runs of one pipeline failing three different ways do not open its breaker (threshold 3).
      const mixed = Pipeline.make({
        name: "mixed",
        version: 1,
        input: Schema.Number,
        output: Schema.Number,
        run: Step.make({
          name: "insert-row",
          input: Schema.Number,
          output: Schema.Number,
          run: (n) =>
            Effect.flatMap(SqlClient.SqlClient, (sql) =>
              sql.unsafe(
                n === 1
                  ? "INSERT INTO t (id, v, missing_col) VALUES (1, 'a', 2)"
                  : n === 2
                  ? "SELECT * FROM nosuchtable"
                  : n === 3
                  ? "SELECT nosuchcol FROM t"
                  : `INSERT INTO t (id, v) VALUES (${n}, 'ok')`
              )).pipe(Effect.as(n))
        })
      })
      for (const n of [1, 2, 3]) yield* failedFingerprint(mixed, n, `mixed-${n}`)
      expect(yield* Engine.run(mixed, 4, { key: "mixed-4" })).toBe(4)
    }).pipe(Effect.provide(Layer.merge(app, engine)))
  })
})
