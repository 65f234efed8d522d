/**
 * The hot path's writer, on a real SQLite file, with every statement it runs logged (better-sqlite3's
 * `verbose`): a batch commits as plain writes; only a write that throws makes it run again isolated.
 */
import { StoreError } from "@ledgerflow/core"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import * as Writer from "../src/internal/writer.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-writer-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

/** A file with a table of rows, its connection logging the statements it runs, and a writer on it. */
const setUp = Effect.acquireRelease(
  Effect.sync(() => {
    const filename = path.join(root, `${randomUUID()}.db`)
    const statements: Array<string> = []
    const db = new Database(filename, { verbose: (sql) => void statements.push(String(sql)) })
    db.pragma("journal_mode = WAL")
    db.pragma("busy_timeout = 100")
    db.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
    statements.length = 0
    const insert = db.prepare<[number]>("INSERT INTO rows (id) VALUES (?)")
    const write = (id: number) => (): Exit.Exit<number> => Exit.succeed(Number(insert.run(id).lastInsertRowid))
    const onError = (cause: unknown) =>
      new StoreError.StoreError({ operation: "test write", message: `refused: ${String(cause)}`, cause })
    const rows = () => db.prepare<[], { id: number }>("SELECT id FROM rows ORDER BY id").all().map((r) => r.id)
    return { db, filename, statements, writer: Writer.make(db, undefined), write, onError, rows }
  }),
  ({ db }) => Effect.sync(() => db.close())
)

/** Submit the writes together, so that they form one batch; each caller's outcome. */
const batch = (
  writer: Writer.Writer,
  writes: ReadonlyArray<() => Exit.Exit<number>>,
  onError: (cause: unknown) => StoreError.StoreError
) => Effect.all(writes.map((write) => Effect.either(writer.submit(write, onError))), { concurrency: "unbounded" })

const count = (statements: ReadonlyArray<string>, prefix: string) => statements.filter((s) => s.startsWith(prefix)).length

describe("Writer", () => {
  it.scoped("a batch commits its writes in one transaction, with no SAVEPOINT around each", () =>
    Effect.gen(function*() {
      const { onError, rows, statements, write, writer } = yield* setUp
      const outcomes = yield* batch(writer, [write(1), write(2), write(3)], onError)
      expect([...statements]).toEqual([
        "BEGIN IMMEDIATE",
        "INSERT INTO rows (id) VALUES (1.0)",
        "INSERT INTO rows (id) VALUES (2.0)",
        "INSERT INTO rows (id) VALUES (3.0)",
        "COMMIT"
      ])
      expect(outcomes.map((o) => o._tag)).toEqual(["Right", "Right", "Right"])
      expect(rows()).toEqual([1, 2, 3])
    }))

  it.scoped("a write that throws is rolled back alone: the batch runs again isolated, and the others land once", () =>
    Effect.gen(function*() {
      const { onError, rows, statements, write, writer } = yield* setUp
      // The second write reuses the first's key: the driver throws in the middle of the batch's first try.
      const outcomes = yield* batch(writer, [write(1), write(1), write(3)], onError)
      const log = [...statements]
      // The first try, rolled back whole; then each write in its own SAVEPOINT, committed.
      expect(count(log, "BEGIN IMMEDIATE")).toBe(2)
      expect(count(log, "SAVEPOINT")).toBe(3)
      expect(log.at(-1)).toBe("COMMIT")
      expect(outcomes.map((o) => o._tag)).toEqual(["Right", "Left", "Right"])
      expect(rows()).toEqual([1, 3])
    }))

  it.scoped("a batch blocked past the busy timeout fails every caller after one try, not two", () =>
    Effect.gen(function*() {
      const { filename, onError, rows, statements, write, writer } = yield* setUp
      const other = new Database(filename)
      yield* Effect.addFinalizer(() => Effect.sync(() => other.close()))
      other.prepare("BEGIN IMMEDIATE").run()
      const outcomes = yield* batch(writer, [write(1), write(2)], onError)
      expect(outcomes.map((o) => o._tag === "Left" && o.left.message)).toEqual([
        expect.stringMatching(/^refused: SqliteError: database is locked/),
        expect.stringMatching(/^refused: SqliteError: database is locked/)
      ])
      expect(count([...statements], "BEGIN IMMEDIATE")).toBe(1)
      other.prepare("ROLLBACK").run()
      expect(rows()).toEqual([])
    }))
})
