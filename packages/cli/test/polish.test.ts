/**
 * The CLI reads as a person expects: a mistyped command gets a "did you mean", and `show --verbose` cuts
 * long bodies unless `--full`. (What --help says of options and usage: help.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Engine } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { closest, didYouMean } from "../src/internal/suggest.js"
import { ledgerflow, tempDir } from "./fixtures/cli.js"
import { flaky, layer } from "./fixtures/ledgerflow.config.js"
import { withEnv } from "./fixtures/prepare.js"

const tree = new Map<string, ReadonlyArray<string>>([
  ["runs", []], ["show", []], ["replay", []], ["resume", []], ["breaker", ["list", "reset"]]
])

// Each case spawns the built CLI; on a loaded 2-core machine a spawn can take many seconds.
const slow = 240_000

describe("a mistyped command", () => {
  it("gets a did you mean, after the parser's list, exit 2", async () => {
    const [show, reset, runs, nonsense] = await Promise.all([
      ledgerflow(["shwo", "run_1"]),
      ledgerflow(["breaker", "rest", "storm"]),
      ledgerflow(["--db", "x.db", "rnus"]),
      ledgerflow(["xyzzy"])
    ])
    expect(show.code).toBe(2)
    expect(show.stderr).toContain("Invalid subcommand")
    expect(show.stderr.trimEnd().split("\n").at(-1)).toBe("did you mean `ledgerflow show`?")
    expect(reset.stderr).toContain("did you mean `ledgerflow breaker reset`?")
    expect(runs.stderr).toContain("did you mean `ledgerflow runs`?")
    expect(nonsense.code).toBe(2)
    expect(nonsense.stderr).not.toContain("did you mean")
  }, slow)

  it("is matched by edit distance or prefix, never across the tree", () => {
    expect(closest("shwo", ["runs", "show"])).toBe("show")
    expect(closest("rep", ["replay", "resume"])).toBe("replay")
    expect(closest("zzz", ["runs", "show"])).toBeUndefined()
    expect(didYouMean(["--config", "shwo", "runs"], tree)).toBeUndefined()
    expect(didYouMean(["--db", "a.db", "resme", "run_1"], tree)).toBe("ledgerflow resume")
    expect(didYouMean(["breaker", "lst"], tree)).toBe("ledgerflow breaker list")
    expect(didYouMean(["breaker", "list"], tree)).toBeUndefined()
  })
})

describe("show --verbose", () => {
  it("cuts a long output at 200 characters, saying how much is left; --full prints it whole", async () => {
    const dir = tempDir()
    const db = join(dir, "ledger.db")
    const question = `why ${"very ".repeat(80)}long?`
    await withEnv(
      { LEDGERFLOW_FIXTURE_EFFECTS: join(dir, "effects.log") },
      Engine.run(flaky, question, { key: "long" })
    ).pipe(
      Effect.provide(Engine.layer().pipe(Layer.provide(SqliteStore.layer({ filename: db })), Layer.provideMerge(layer))),
      Effect.scoped,
      Effect.runPromise
    )
    const runs = await ledgerflow(["--db", db, "runs", "--json"])
    const runId = String(JSON.parse(runs.stdout.trim().split("\n")[0]!).runId)
    const [verbose, full] = await Promise.all([
      ledgerflow(["--db", db, "show", runId, "--verbose"]),
      ledgerflow(["--db", db, "show", runId, "--verbose", "--full"])
    ])
    expect(verbose.code).toBe(0)
    const flat = (s: string) => s.replace(/\s+/g, " ")
    expect(flat(verbose.stdout)).toMatch(/more characters; --full shows all\)/)
    expect(flat(verbose.stdout)).not.toContain(flat(`"answer to ${question}"`))
    expect(full.code).toBe(0)
    expect(flat(full.stdout)).not.toContain("--full shows all")
    expect(flat(full.stdout).replace(/ /g, "")).toContain(`"answerto${question}"`.replace(/ /g, ""))
  }, slow)
})
