/**
 * Bad usage and bad input exit 2 with one line saying what is wrong and what to do — no stack trace
 * unless --debug — and a missing store is never created.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { config, ledgerflow, oneLine, tempDir } from "./fixtures/cli.js"
import { type Prepared, prepare } from "./fixtures/prepare.js"

let dir: string
let db: string
let prepared: Prepared

beforeAll(async () => {
  dir = tempDir()
  db = join(dir, "ledger.db")
  prepared = await prepare({ db, effects: join(dir, "effects.log") })
})


describe("a missing store", () => {
  it("is an error naming where it looked, and is not created", async () => {
    const cwd = tempDir()
    const [byDefault, byFlag, byEnv] = await Promise.all([
      ledgerflow(["runs"], { cwd }),
      ledgerflow(["--db", join(cwd, "nope.db"), "show", "run_x"], { cwd }),
      ledgerflow(["failures"], { cwd, env: { LEDGERFLOW_DB: join(cwd, "env.db") } })
    ])
    oneLine(byDefault, "no ledgerflow store at .ledgerflow/ledger.db (the default; pass --db PATH or set LEDGERFLOW_DB")
    oneLine(byFlag, `no ledgerflow store at ${join(cwd, "nope.db")} (given with --db)`)
    oneLine(byEnv, `no ledgerflow store at ${join(cwd, "env.db")} (from $LEDGERFLOW_DB)`)
    expect(existsSync(join(cwd, ".ledgerflow"))).toBe(false)
    expect(existsSync(join(cwd, "nope.db"))).toBe(false)
    expect(existsSync(join(cwd, "env.db"))).toBe(false)
  })
})

describe("a file that is not our store", () => {
  it("is refused untouched: not a database, another application's database", async () => {
    const text = join(dir, "notes.db")
    writeFileSync(text, "hello, not sqlite\n".repeat(100))
    const foreign = join(dir, "app.db")
    const app = new Database(foreign)
    app.exec("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    app.close()
    const before = [readFileSync(text), readFileSync(foreign)]
    const [notSqlite, other] = await Promise.all([
      ledgerflow(["--db", text, "runs"]),
      ledgerflow(["--db", foreign, "runs"])
    ])
    oneLine(notSqlite, "is not a ledgerflow store (it is not a SQLite database); use a new path or the right file (given with --db)")
    oneLine(other, "is not a ledgerflow store (it holds other tables (users))")
    expect(readFileSync(text).equals(before[0]!)).toBe(true)
    expect(readFileSync(foreign).equals(before[1]!)).toBe(true)
  })

  it("written by a newer ledgerflow is refused with what to do", async () => {
    const newer = join(dir, "newer.db")
    copyFileSync(db, newer)
    const store = new Database(newer)
    store.prepare("UPDATE ledgerflow_meta SET value = '99' WHERE key = 'schema_version'").run()
    store.close()
    oneLine(await ledgerflow(["--db", newer, "runs"]), /was written by a newer ledgerflow \(schema 99, .*\); upgrade ledgerflow/)
  })
})

describe("an event this version does not know", () => {
  it("is named, with what to do, by show and by export", async () => {
    const future = join(dir, "future.db")
    copyFileSync(db, future)
    const store = new Database(future)
    store.prepare("INSERT INTO events (run_id, seq, type, v, at, data) VALUES (?, 7, 'StepTeleported', 1, 0, '{}')")
      .run(prepared.flaky)
    store.close()
    const [show, exported] = await Promise.all([
      ledgerflow(["--db", future, "show", prepared.flaky]),
      ledgerflow(["--db", future, "export", "--run", prepared.flaky])
    ])
    for (const result of [show, exported]) {
      oneLine(result, /has type "StepTeleported", which this version of ledgerflow does not know; upgrade ledgerflow/)
    }
  })
})

describe("an unknown run", () => {
  it("by id or by a prefix several runs share", async () => {
    const [unknown, ambiguous] = await Promise.all([
      ledgerflow(["--db", db, "show", "run_doesnotexist"]),
      ledgerflow(["--db", db, "show", "run_"])
    ])
    oneLine(unknown, "no run has the id run_doesnotexist; list runs with `ledgerflow runs`")
    oneLine(ambiguous, "run_ is the prefix of several runs; type more of the id")
  })
})

describe("the config", () => {
  const write = (name: string, text: string) => {
    const file = join(dir, name)
    writeFileSync(file, text)
    return file
  }

  it("missing, by default or as given", async () => {
    const cwd = tempDir()
    const [byDefault, given] = await Promise.all([
      ledgerflow(["--db", db, "replay", prepared.flaky], { cwd }),
      ledgerflow(["--db", db, "--config", "nope.config.ts", "replay", prepared.flaky], { cwd })
    ])
    oneLine(byDefault, "`ledgerflow replay` runs your pipelines' code, found through ./ledgerflow.config.ts, which does not exist here")
    oneLine(given, "the config nope.config.ts does not exist")
  })

  it("that does not load, or exports no pipelines, or not the run's", async () => {
    const syntax = write("syntax.config.ts", "export const pipelines = [;\n")
    const throws = write("throws.config.ts", "throw new Error('cannot reach the vault')\n")
    const empty = write("empty.config.ts", "export const pipelines = []\n")
    const wrong = write("wrong.config.ts", "export const pipelines = [{ name: 'x' }]\n")
    const partial = write("partial.config.ts", `export { flaky } from ${JSON.stringify(config)}\nimport { flaky } from ${JSON.stringify(config)}\nexport const pipelines = [flaky]\n`)
    const results = await Promise.all([syntax, throws, empty, wrong, partial].map((file) =>
      ledgerflow(["--db", db, "--config", file, "resume", prepared.storm[0]!])
    ))
    oneLine(results[0]!, /cannot load the config .*syntax\.config\.ts: .*Unexpected/)
    oneLine(results[1]!, /cannot load the config .*throws\.config\.ts: cannot reach the vault; fix it, or pass --config PATH/)
    oneLine(results[2]!, "exports no pipelines; add `export const pipelines = [myPipeline]`")
    oneLine(results[3]!, "exports pipelines[0], which is not a pipeline")
    oneLine(results[4]!, /belongs to pipeline "storm", which the config does not export \(.*partial\.config\.ts exports flaky\)/)
  })
})

describe("bad usage", () => {
  it("an unknown command, a missing argument, bad option values: exit 2 with the parser's message", async () => {
    const cases: Array<[Array<string>, string]> = [
      [["bogus"], "Invalid subcommand for ledgerflow"],
      [["show"], "Missing argument <run>"],
      [["runs", "--since", "yesterday"], `--since takes an ISO date (2025-01-31, 2025-01-31T12:00Z) or a duration (30m, 2h, 7d); got "yesterday"`],
      [["runs", "--status", "broken"], "Expected one of the following cases: running, completed"],
      [["runs", "--limit", "-3"], "--limit takes 0 or more; got -3"],
      [["runs", "--limit", "many"], "'many' is not a integer"]
    ]
    const results = await Promise.all(cases.map(([args]) => ledgerflow(["--db", db, ...args])))
    results.forEach((result, i) => {
      expect(result.code, cases[i]![0].join(" ")).toBe(2)
      expect(result.stderr.replace(/\s+/g, " ")).toContain(cases[i]![1])
      expect(result.stderr).not.toMatch(/^\s+at /m)
    })
  })
})

describe("--debug", () => {
  it("adds the full cause with its stack trace to the one line", async () => {
    const result = await ledgerflow(["--db", join(tempDir(), "nope.db"), "runs", "--debug"])
    expect(result.code).toBe(2)
    expect(result.stderr.split("\n")[0]).toMatch(/^error: no ledgerflow store at /)
    expect(result.stderr).toMatch(/^\s+at /m)
  })
})
