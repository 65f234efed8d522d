/**
 * The commands that run the pipelines' code from the config (replay, resume, rollback, breaker reset),
 * through the built binary, against a store the library prepared. Step bodies record themselves in a
 * side-effect file: what the CLI served from the log never appears there twice.
 */
import { Engine } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { config, fixtures, ledgerflow, mask, tempDir } from "./fixtures/cli.js"
import { Deliveries, guarded, report } from "./fixtures/ledgerflow.config.js"
import { names, type Prepared, prepare, withEnv } from "./fixtures/prepare.js"

let dir: string
let db: string
let effects: string
let prepared: Prepared

beforeAll(async () => {
  dir = tempDir()
  db = join(dir, "ledger.db")
  effects = join(dir, "effects.log")
  prepared = await prepare({ db, effects })
})

const run = (args: Array<string>, env: Record<string, string> = {}) =>
  ledgerflow(["--db", db, ...args], { env: { LEDGERFLOW_FIXTURE_EFFECTS: effects, ...env } })

const bodies = () => existsSync(effects) ? readFileSync(effects, "utf8").split("\n").filter((l) => l !== "") : []

describe("ledgerflow replay", () => {
  it("serves every step from the log and runs no step body: identical, exit 0", async () => {
    const before = bodies()
    const result = await run(["replay", prepared.divergent])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("greet#0  served")
    expect(result.stdout).toContain("identical: every step the code asked for was served from the log")
    expect(bodies()).toEqual(before)
  })

  it("exits 1 when the pipeline's code now calls a step with another input", async () => {
    const before = bodies()
    const [human, json] = await Promise.all([
      run(["replay", prepared.divergent], { LEDGERFLOW_FIXTURE_VARIANT: "goodbye" }),
      run(["replay", prepared.divergent, "--json"], { LEDGERFLOW_FIXTURE_VARIANT: "goodbye" })
    ])
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/greet#0 +diverged +input [0-9a-f]{12} differs from the log's [0-9a-f]{12}/)
    expect(human.stdout).toContain("diverged: the pipeline's code and the log disagree")
    expect(human.stderr).toBe("")
    expect(json.code).toBe(1)
    const report = JSON.parse(json.stdout)
    expect(report.runId).toBe(prepared.divergent)
    expect(report.pipeline).toBe("divergent")
    expect(report.outcome).toBe("diverged")
    expect(report.steps).toHaveLength(1)
    expect(report.steps[0].stepId).toBe("greet#0")
    expect(report.steps[0].outcome).toBe("diverged")
    expect(report.steps[0].expectedInputHash).toMatch(/^[0-9a-f]+$/)
    expect(report.steps[0].inputHash).not.toBe(report.steps[0].expectedInputHash)
    expect(bodies()).toEqual(before)
  })

  it("reports where a run that stopped early stopped, without running it: incomplete, exit 0", async () => {
    const result = await run(["replay", prepared.report2, "--json"])
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.outcome).toBe("incomplete")
    expect(report.steps.map((s: { stepId: string; outcome: string }) => `${s.stepId} ${s.outcome}`)).toEqual([
      "fetch#0 served",
      "summarize#0 served",
      "write-file#0 not-in-journal"
    ])
  })
})

describe("a config whose layer cannot build (a missing API key)", () => {
  const failing = join(fixtures, "failing-layer.config.ts")

  it("still replays, with one short note: no step body runs in a replay", async () => {
    const result = await run(["--config", failing, "replay", prepared.divergent])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("identical")
    expect(result.stderr).toBe("note: replaying without the config's layer, which did not build; a replay needs none (--verbose: why)\n")
  })

  it("says why the layer did not build with --verbose", async () => {
    const result = await run(["--config", failing, "replay", prepared.divergent, "--verbose"])
    expect(result.code).toBe(0)
    expect(result.stderr).toContain("note: the `layer` of")
    expect(result.stderr).toContain("failed to build: no API key: set FIXTURE_API_KEY; replaying without it")
  })

  it("stops a resume before it runs anything, exit 2", async () => {
    const before = bodies()
    const result = await run(["--config", failing, "resume", prepared.guarded[0]!])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/^error: the `layer` of .*failing-layer\.config\.ts failed to build: no API key: set FIXTURE_API_KEY\n$/)
    expect(bodies()).toEqual(before)
  })
})

describe("ledgerflow resume", () => {
  it("finishes a failed run after the fix: completed steps are served from the log, the rest run", async () => {
    const before = bodies()
    const result = await run(["resume", prepared.report])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe("")
    expect(mask(result.stdout, names(prepared))).toBe(
      [
        "resumed run_report............... (report@1): completed",
        "served  fetch#0, summarize#0 (from the log, not run again)",
        "saved   9,000 in / 500 out tokens",
        "ran     write-file#0 (1 attempt), deliver#0 (1 attempt)",
        `output  "delivered 14 bytes"`,
        ""
      ].join("\n")
    )
    // The paid steps did not run again; the undone file was written again, then delivered.
    expect(bodies().slice(before.length)).toEqual(["write-file", "deliver"])
    const shown = JSON.parse((await run(["show", prepared.report, "--json"])).stdout)
    expect(shown.run.status).toBe("completed")
    const served = shown.events.filter((e: { type: string }) => e.type === "StepsServed")
    expect(served.map((e: { stepIds: Array<string> }) => e.stepIds)).toEqual([["fetch#0", "summarize#0"]])
    expect(shown.saved.inputTokens).toBe(9000)
  })

  it("--json says what was served, the tokens saved, what ran and the output", async () => {
    const result = await run(["resume", prepared.report2, "--json"])
    expect(result.code).toBe(0)
    const resumed = JSON.parse(result.stdout)
    expect(resumed.runId).toBe(prepared.report2)
    expect(resumed.status).toBe("completed")
    expect(resumed.served).toEqual(["fetch#0", "summarize#0"])
    expect(resumed.saved).toEqual({ inputTokens: 9000, outputTokens: 500, cacheWriteTokens: 0, cacheReadTokens: 0 })
    expect(resumed.ran).toEqual([{ stepId: "write-file#0", attempts: 1 }, { stepId: "deliver#0", attempts: 1 }])
    expect(resumed.output).toBe("delivered 14 bytes")
    expect(resumed.failureClass).toBeNull()
  })

  it("exits 1 with the failure in one line when the run fails again", async () => {
    const result = await run(["resume", prepared.storm[0]!])
    expect(result.code).toBe(1)
    expect(result.stdout).toContain("(storm@1): failed")
    expect(result.stdout).toContain("ran     write-row#0 (1 attempt)")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toMatch(/^error: deterministic failure: .*column "x" does not exist/)
  })

  it("of a completed run does nothing and says so", async () => {
    const result = await run(["resume", prepared.flaky])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("had already completed; nothing to resume")
  })

  it("without the config's layer, names the missing service", async () => {
    const noLayer = join(dir, "no-layer.config.ts")
    writeFileSync(noLayer, `export { pipelines } from ${JSON.stringify(config)}\n`)
    const broken = await prepare({ db: join(dir, "other.db"), effects: join(dir, "other.log") })
    const result = await ledgerflow(["--db", join(dir, "other.db"), "--config", noLayer, "resume", broken.report])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("a step needs the service fixture/Deliveries, which")
    expect(result.stderr).toContain("export a `layer` providing it")
  })
})

describe("ledgerflow rollback", () => {
  /**
   * A report run whose worker stopped inside deliver (interrupted, as Ctrl-C stops it): fetch, summarize and
   * write-file are journaled, and write-file's compensation has not run. Its run id.
   */
  const stoppedInDeliver = (key: string) =>
    Effect.gen(function*() {
      const reached = yield* Deferred.make<void>()
      const hanging = Layer.succeed(Deliveries, { deliver: () => Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never) })
      const fiber = yield* Effect.fork(Engine.run(report, key, { key }).pipe(Effect.provide(hanging)))
      yield* Deferred.await(reached)
      yield* Fiber.interrupt(fiber)
      const [stopped] = yield* Engine.runs({ pipeline: "report", key })
      return stopped!
    }).pipe(
      (effect) => withEnv({ LEDGERFLOW_FIXTURE_EFFECTS: effects }, effect),
      Effect.provide(Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: db })))),
      Effect.scoped,
      Effect.runPromise
    )

  it("rolls back a run left mid-way: its completed steps' compensations run; --json gives the report", async () => {
    const stopped = await stoppedInDeliver("initech")
    expect(stopped.status).toBe("running")
    const before = bodies()
    expect(before.slice(-4)).toEqual(["fetch", "summarize", "write-file", "deliver"])
    const result = await run(["rollback", stopped.runId, "--json"])
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.runId).toBe(stopped.runId)
    expect(report.status).toBe("rolled_back")
    expect(report.compensated).toEqual(["write-file#0"])
    expect(report.pending).toEqual([])
    // The file was undone once, and nothing ran forward.
    expect(bodies().slice(before.length)).toEqual(["undo write-file"])
    const again = await run(["rollback", stopped.runId])
    expect(again.code).toBe(0)
    expect(again.stdout).toContain("already rolled back")
  }, 120_000)

  it("refuses a completed run with exit 2", async () => {
    const result = await run(["rollback", prepared.flaky])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/^error: run run_\w+ completed; a completed run is not rolled back/)
  })
})

describe("ledgerflow breaker list and reset", () => {
  const start = (n: number) =>
    Engine.run(guarded, n, { key: `guarded-${n}` }).pipe(
      Effect.flip,
      Effect.map((e) => e._tag),
      Effect.provide(Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: db })))),
      Effect.scoped,
      Effect.runPromise
    )

  it("closes the storm breaker: a new run of the pipeline starts again", async () => {
    expect(await start(3)).toBe("CircuitOpen")
    const listed = await run(["breaker", "list", "--json"])
    expect(listed.code).toBe(0)
    const guardedState = listed.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((b) => b.pipeline === "guarded")
    expect(guardedState).toMatchObject({ version: "1", threshold: 2, state: "open" })
    expect(guardedState.runs).toHaveLength(2)
    const table = await run(["breaker", "list"])
    expect(table.stdout).toMatch(/guarded@1\s+open\s+2 runs failed the same way/)
    const result = await run(["breaker", "reset", "guarded"])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("closed the storm breaker of guarded@1")
    // Started, and failed its own way: the breaker no longer refuses it.
    expect(await start(4)).toBe("Deterministic")
    expect((await run(["breaker", "list"])).stdout).toMatch(/guarded@1\s+closed/)
    // Four CLI processes: each can take 15 s on a loaded 2-core machine.
  }, 120_000)

  it("names the pipelines the config has when asked for one it does not", async () => {
    const result = await run(["breaker", "reset", "nope"])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe(
      `error: no pipeline is named "nope" (ledgerflow.config.ts exports report, flaky, storm, guarded, divergent)\n`
    )
  })
})
