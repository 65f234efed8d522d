/**
 * The read commands (runs, show, failures, export) against a real SQLite store that the library prepared:
 * golden tables (ids and times masked, widths kept), JSON checked field by field, colour only when asked.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { ledgerflow, mask, ndjson, onTerminal, shellCommand, tempDir, uniquePrefix } from "./fixtures/cli.js"
import { allIds, names, type Prepared, prepare } from "./fixtures/prepare.js"

let dir: string
let db: string
let prepared: Prepared
let named: Record<string, string>

beforeAll(async () => {
  dir = tempDir()
  db = join(dir, "ledger.db")
  prepared = await prepare({ db, effects: join(dir, "effects.log") })
  named = names(prepared)
})

const run = (...args: Array<string>) => ledgerflow(["--db", db, ...args])
const json = async (...args: Array<string>) => ndjson((await run(...args)).stdout)

const golden = (name: string) => `./golden/${name}.txt`

const fits80 = (text: string) => {
  for (const line of text.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80)
}

/*
 * Beside each golden, the checks of what it means (the marks, the rules, the order), so that a careless
 * `vitest -u` cannot bless a regression: the golden pins the layout, these pin the facts. (Under CI,
 * vitest.config.ts refuses update mode altogether.)
 */

/** The text with its wrapping undone: a reason wrapped over lines reads as one. */
const flat = (text: string) => text.replace(/\s+/g, " ")

/** Each of `parts` occurs in `text`, in this order. */
const inOrder = (text: string, ...parts: Array<string>) => {
  let from = 0
  for (const part of parts) {
    const at = text.indexOf(part, from)
    expect(at, `"${part}" after position ${from} in:\n${text}`).toBeGreaterThanOrEqual(0)
    from = at + part.length
  }
}

describe("ledgerflow runs", () => {
  it("lists every run newest first in a table that fits 80 columns", async () => {
    const result = await run("runs")
    expect(result.code).toBe(0)
    expect(result.stderr).toBe("")
    fits80(result.stdout)
    // Every run once, newest first, each with its stored status.
    const stored = await json("runs", "--json", "--limit", "0")
    const rows = result.stdout.trim().split("\n").slice(1).map((line) => line.split(/\s+/))
    expect(rows.map(([id]) => id)).toEqual(stored.map((r) => r["runId"]))
    expect(rows.map(([, status]) => status)).toEqual(stored.map((r) => r["status"]))
    expect(rows.map(([id]) => named[id!])).toEqual([
      "divergent",
      "guarded-2",
      "guarded-1",
      ...prepared.storm.map((_, i) => `storm-${21 - i}`),
      "report2",
      "report",
      "flaky"
    ])
    await expect(mask(result.stdout, named)).toMatchFileSnapshot(golden("runs"))
  })

  it("--json prints one object a line with every field of the run", async () => {
    const result = await run("runs", "--json")
    expect(result.code).toBe(0)
    const runs = ndjson(result.stdout)
    expect(runs).toHaveLength(allIds(prepared).length)
    expect(runs.map((r) => r["runId"])).toEqual([...runs.map((r) => r["runId"])].sort().reverse())
    const flaky = runs.find((r) => r["runId"] === prepared.flaky)!
    expect(flaky["pipeline"]).toBe("flaky")
    expect(flaky["version"]).toBe("1")
    expect(flaky["key"]).toBe("flaky-1")
    expect(flaky["status"]).toBe("completed")
    expect(flaky["lastSeq"]).toBe(6)
    expect(typeof flaky["createdAt"]).toBe("number")
    expect(flaky["updatedAt"]).toBeGreaterThanOrEqual(flaky["createdAt"] as number)
    expect(flaky["failureClass"]).toBeNull()
    expect(flaky["failureFingerprint"]).toBeNull()
    expect(flaky["failureReason"]).toBeNull()
    expect(flaky["parentRunId"]).toBeNull()
    const storm = runs.find((r) => r["runId"] === prepared.storm[0])!
    expect(storm["status"]).toBe("failed")
    expect(storm["failureClass"]).toBe("deterministic")
    expect(storm["failureFingerprint"]).toMatch(/^write-row\|Deterministic\|/)
    expect(storm["failureReason"]).toContain(`column "x" does not exist`)
  })

  it("filters by status, pipeline, key and time, and --limit caps the list with a note", async () => {
    const ids = async (...args: Array<string>) => (await json("runs", "--json", ...args)).map((r) => r["runId"])
    const [completed, storm, key, recent, future, limited] = await Promise.all([
      ids("--status", "completed"),
      ids("--pipeline", "storm", "--limit", "0"),
      ids("--key", "batch-3"),
      ids("--since", "1h"),
      ids("--since", "2999-01-01"),
      run("runs", "--limit", "5")
    ])
    expect(completed.sort()).toEqual([prepared.flaky, prepared.divergent].sort())
    expect(storm.sort()).toEqual([...prepared.storm].sort())
    expect(key).toEqual([prepared.storm[2]])
    expect(recent).toHaveLength(allIds(prepared).length)
    expect(future).toEqual([])
    expect(limited.stdout.trim().split("\n")).toHaveLength(6)
    expect(limited.stderr).toContain("showing the 5 most recent runs")
    const none = await run("runs", "--since", "2999-01-01")
    expect(none.code).toBe(0)
    expect(none.stdout).toBe("")
    expect(none.stderr).toBe("no runs match\n")
  })
})

describe("ledgerflow show", () => {
  /** `show` of a run: it exits 0 and fits 80 columns; its masked output, and that flattened. */
  const shown = async (runIdOrPrefix: string) => {
    const result = await run("show", runIdOrPrefix)
    expect(result.code).toBe(0)
    fits80(result.stdout)
    const masked = mask(result.stdout, named)
    return { masked, text: flat(masked) }
  }

  it("tells a run's timeline: attempts, classifications and reasons, tokens, compensation, outcome", async () => {
    const { masked, text } = await shown(prepared.report)
    expect(text).toContain("status rolled_back (deterministic)")
    // The steps in order, each with its mark; the failure with its class and rule; then the undo.
    inOrder(
      text,
      "run started (report@1, key acme)",
      "fetch#0 ~ ✓ completed, attempt 1; tokens 1,000 in / 200 out",
      "summarize#0 ~ ✓ completed, attempt 1; tokens 8,000 in / 300 out",
      "write-file#0 ~ ✓ completed, attempt 1",
      "deliver#0 ~ ✗ attempt 1 failed, deterministic:",
      "(rule: sqlite-code); gave up: a deterministic failure is never retried",
      "run failed at deliver#0, deterministic",
      "write-file#0 ↺ compensation started",
      "write-file#0 ↺ compensated",
      "run rolled back",
      "write-file#0 compensated 1",
      "deliver#0 failed 1",
      "spent 9,000 in / 500 out tokens"
    )
    expect(text).not.toContain("retry in")
    await expect(masked).toMatchFileSnapshot(golden("show-report"))
  })

  it("shows each transient failure with its retry delay, by a unique prefix of the run id", async () => {
    const { masked, text } = await shown(uniquePrefix(prepared.flaky, allIds(prepared)))
    expect(text).toContain("run run_flaky.")
    inOrder(
      text,
      "run started (flaky@1, key flaky-1)",
      "✗ attempt 1 failed, transient: HTTP 503 overloaded; retry in 10ms; tokens 500 in / 0 out",
      "✗ attempt 2 failed, transient: HTTP 503 overloaded; retry in 10ms; tokens 500 in / 0 out",
      "✓ completed, attempt 3; tokens 500 in / 50 out",
      "run completed",
      "call-model#0 completed 3 1,500 50"
    )
    expect(text.match(/✗/g)).toHaveLength(2)
    await expect(masked).toMatchFileSnapshot(golden("show-flaky"))
  })

  it("--verbose adds the run's input and each step's input hash and output JSON", async () => {
    const result = await run("show", prepared.flaky, "--verbose")
    expect(result.code).toBe(0)
    fits80(result.stdout)
    expect(result.stdout).toContain(`input "what is a ledger?"`)
    expect(result.stdout).toMatch(/input hash [0-9a-f]{32}/)
    expect(result.stdout).toContain(`output "answer to what is a ledger?"`)
    expect(result.stdout).toContain("lease taken by")
  })

  it("--json prints the run, its steps, tokens, and its events", async () => {
    const result = await run("show", prepared.flaky, "--json")
    expect(result.code).toBe(0)
    const shown = JSON.parse(result.stdout)
    expect(shown.run.runId).toBe(prepared.flaky)
    expect(shown.run.status).toBe("completed")
    expect(shown.steps).toHaveLength(1)
    const [step] = shown.steps
    expect(step.stepId).toBe("call-model#0")
    expect(step.name).toBe("call-model")
    expect(step.attempts).toBe(3)
    expect(step.failures).toBe(2)
    expect(step.state).toBe("completed")
    expect(step.served).toBe(0)
    expect(step.spent).toEqual({ inputTokens: 1500, outputTokens: 50, cacheWriteTokens: 0, cacheReadTokens: 0 })
    expect(step.lastFailure).toEqual({ classification: "transient", reason: "HTTP 503 overloaded" })
    expect(shown.spent.inputTokens).toBe(1500)
    expect(shown.saved.inputTokens).toBe(0)
    expect(shown.events.map((e: { type: string }) => e.type)).toEqual([
      "RunStarted",
      "LeaseTaken",
      "StepAttemptFailed",
      "StepAttemptFailed",
      "StepCompleted",
      "RunCompleted"
    ])
    const failed = shown.events[2]
    expect(failed.seq).toBe(3)
    expect(failed.failure._tag).toBe("Transient")
    expect(failed.failure.reason).toBe("HTTP 503 overloaded")
    expect(failed.retryDelayMs).toBe(10)
    expect(failed.usage[0]).toEqual({ model: "claude-test", inputTokens: 500, outputTokens: 0, cacheWriteTokens: 0, cacheReadTokens: 0 })
  })
})

describe("ledgerflow failures", () => {
  it("shows the 21 identical failures as one line ×21", async () => {
    const result = await run("failures")
    expect(result.code).toBe(0)
    fits80(result.stdout)
    expect(result.stdout.split("\n").filter((l) => l.includes("×21"))).toHaveLength(1)
    // The groups, largest first, each with its class, pipeline, step and rule.
    inOrder(
      flat(result.stdout),
      "×21 deterministic storm@1 · write-row#0",
      "(rule: postgres-code)",
      "×2 deterministic guarded@1 · write-row#0",
      "×2 deterministic report@1 · deliver#0",
      "(rule: sqlite-code)"
    )
    expect(result.stdout).toContain(`runs  ${prepared.storm[20]}`)
    await expect(mask(result.stdout, named)).toMatchFileSnapshot(golden("failures"))
  })

  it("--json prints each group with its count, first and last seen, and all its runs", async () => {
    const result = await run("failures", "--json")
    expect(result.code).toBe(0)
    const groups = ndjson(result.stdout)
    expect(groups.map((g) => g["count"])).toEqual([21, 2, 2])
    const storm = groups[0]!
    expect(storm["classification"]).toBe("deterministic")
    expect(storm["pipelines"]).toEqual(["storm@1"])
    expect(storm["steps"]).toEqual(["write-row#0"])
    expect(storm["rule"]).toBe("postgres-code")
    expect(storm["fingerprint"]).toMatch(/^write-row\|Deterministic\|postgres-code\|/)
    expect([...(storm["runIds"] as Array<string>)].sort()).toEqual([...prepared.storm].sort())
    expect(storm["firstSeen"]).toBeLessThanOrEqual(storm["lastSeen"] as number)
    expect((await json("failures", "--json", "--pipeline", "report")).map((g) => g["runIds"])).toEqual([
      [prepared.report2, prepared.report]
    ])
  })
})

describe("ledgerflow export", () => {
  it("writes every event as one flat JSON object a line, runs oldest first, seqs in order", async () => {
    const result = await run("export")
    expect(result.code).toBe(0)
    const events = ndjson(result.stdout)
    const runs = await json("runs", "--json", "--limit", "0")
    expect(events).toHaveLength(runs.reduce((n, r) => n + (r["lastSeq"] as number), 0))
    for (const e of events) {
      expect(Object.keys(e).slice(0, 5)).toEqual(["runId", "seq", "type", "v", "at"])
      expect(e["v"]).toBe(1)
      expect(e).not.toHaveProperty("_tag")
    }
    for (const id of new Set(events.map((e) => e["runId"]))) {
      const seqs = events.filter((e) => e["runId"] === id).map((e) => e["seq"])
      expect(seqs).toEqual(seqs.map((_, i) => i + 1))
    }
    expect(events[0]!["runId"]).toBe(prepared.flaky)
    expect(events[0]!["type"]).toBe("RunStarted")
    expect(events[0]!["pipeline"]).toBe("flaky")
  })

  it("--run takes one run by prefix, --since drops older events", async () => {
    const one = await json("export", "--run", uniquePrefix(prepared.flaky, allIds(prepared)))
    expect(one.map((e) => e["type"])).toEqual([
      "RunStarted",
      "LeaseTaken",
      "StepAttemptFailed",
      "StepAttemptFailed",
      "StepCompleted",
      "RunCompleted"
    ])
    const none = await run("export", "--since", "2999-01-01T00:00Z")
    expect(none.code).toBe(0)
    expect(none.stdout).toBe("")
    expect(none.stderr).toBe("no events match\n")
  })
})

describe("colour", () => {
  const escapes = /\x1b\[/
  it("is off when stdout is not a terminal", async () => {
    expect((await run("runs")).stdout).not.toMatch(escapes)
    expect((await run("show", prepared.report)).stdout).not.toMatch(escapes)
  })

  it("is never used with --json or NO_COLOR, even when forced", async () => {
    const forced = async (args: Array<string>, env: Record<string, string> = {}) =>
      (await ledgerflow(["--db", db, ...args], { env: { FORCE_COLOR: "1", ...env } })).stdout
    const [coloured, asJson, showJson, noColor] = await Promise.all([
      forced(["runs"]),
      forced(["runs", "--json"]),
      forced(["show", prepared.report, "--json"]),
      forced(["runs"], { NO_COLOR: "1" })
    ])
    expect(coloured).toMatch(escapes)
    expect(asJson).not.toMatch(escapes)
    expect(showJson).not.toMatch(escapes)
    expect(noColor).not.toMatch(escapes)
  })
})

describe("on a terminal", () => {
  // That the progress line is drawn (its frames, while the work waits) is proven on Postgres, where a lock
  // on the events table holds the export: postgres.test.ts, "export on a terminal". Here the export is
  // quick, so it may end before the first frame.
  it("colours the table, and export erases its progress line on stderr before it exits (script(1) gives a pty)", async () => {
    const [table, exported] = await Promise.all([
      onTerminal(`${shellCommand(db)} runs --limit 2`, dir),
      onTerminal(`${shellCommand(db)} export > export.ndjson`, dir)
    ])
    expect(table.code).toBe(0)
    expect(table.output).toMatch(/\x1b\[32mcompleted/)
    expect(exported.code).toBe(0)
    // The erase is written only when stderr is a terminal: export ran with its progress line, and cleared it.
    expect(exported.output.endsWith("\r\x1b[2K")).toBe(true)
    expect(ndjson(readFileSync(join(dir, "export.ndjson"), "utf8")).length).toBeGreaterThan(100)
  })
})

describe("the store", () => {
  it("is only read: no command changes a byte of it", async () => {
    const before = readFileSync(db)
    await Promise.all([run("runs"), run("failures"), run("export"), run("show", prepared.report)])
    expect(readFileSync(db).equals(before)).toBe(true)
  })
})
