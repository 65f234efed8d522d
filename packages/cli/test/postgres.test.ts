/**
 * Every command on a Postgres store (`--db postgres://…` or `LEDGERFLOW_DB`), against a store the library
 * prepared on the test run's embedded server: the same tables as on SQLite (the same golden files), the
 * writing commands too, and a server the CLI cannot use is one line that never shows the password.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { PgStore } from "@ledgerflow/store"
import { existsSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { freshDatabase, openTransaction } from "../../../test/support/postgres.js"
import { ledgerflow, mask, ndjson, oneLine, onTerminal, shellCommand, tempDir } from "./fixtures/cli.js"
import { allIds, names, type Prepared, prepare } from "./fixtures/prepare.js"

let url: string
let effects: string
let prepared: Prepared
let named: Record<string, string>

beforeAll(async () => {
  url = await freshDatabase()
  effects = join(tempDir(), "effects.log")
  prepared = await prepare({ db: "", effects, store: PgStore.layer({ url }) })
  named = names(prepared)
})

const run = (...args: Array<string>) => ledgerflow(["--db", url, ...args], { env: { LEDGERFLOW_FIXTURE_EFFECTS: effects } })
const bodies = () => existsSync(effects) ? readFileSync(effects, "utf8").split("\n").filter((l) => l !== "") : []

describe("the read commands on Postgres", () => {
  it("runs, show and failures print the same tables as on SQLite", async () => {
    const [runs, show, failures] = await Promise.all([run("runs"), run("show", prepared.report), run("failures")])
    for (const result of [runs, show, failures]) {
      expect(result.code, result.stderr).toBe(0)
      expect(result.stderr).toBe("")
    }
    await expect(mask(runs.stdout, named)).toMatchFileSnapshot("./golden/runs.txt")
    await expect(mask(show.stdout, named)).toMatchFileSnapshot("./golden/show-report.txt")
    await expect(mask(failures.stdout, named)).toMatchFileSnapshot("./golden/failures.txt")
  })

  it("export writes every run's events, and LEDGERFLOW_DB selects the store like --db", async () => {
    const exported = await run("export")
    expect(exported.code, exported.stderr).toBe(0)
    const events = ndjson(exported.stdout)
    expect(new Set(events.map((e) => e["runId"]))).toEqual(new Set(allIds(prepared)))
    const byEnv = await ledgerflow(["runs", "--json"], { env: { LEDGERFLOW_DB: url } })
    expect(byEnv.code, byEnv.stderr).toBe(0)
    expect(ndjson(byEnv.stdout)).toHaveLength(allIds(prepared).length)
    const cost = await run("cost", "--by", "pipeline")
    expect(cost.code, cost.stderr).toBe(0)
    expect(cost.stdout).toContain("report")
  })
})

describe("export on a terminal", () => {
  it("draws its progress line (spinner, label, seconds) while the store keeps it waiting, then erases it", async () => {
    // The export's reads of the events table wait on this lock: long enough for frames to be drawn (the
    // first after 200 ms, then every 100 ms). Listing the runs, before the progress line, does not.
    const lock = await openTransaction(url, "LOCK TABLE ledgerflow.events IN ACCESS EXCLUSIVE MODE")
    // A frame: spinner, label, what the export last said (once it reads on), seconds spent.
    const frame = /\r\x1b\[2K([⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]) exporting(?: \d+ events, \d+\/(\d+) runs)? \(\d+s\)/g
    const spinner = (output: string) => new Set([...output.matchAll(frame)].map((m) => m[1]))
    let released: Promise<void> | undefined
    const dir = tempDir()
    try {
      const exported = await onTerminal(`${shellCommand(url)} export > export.ndjson`, dir, (output) => {
        // Two frames with the spinner moved on: the line is live. Let the export read on.
        if (released === undefined && spinner(output).size >= 2) released = lock.release()
      })
      expect(exported.code, exported.output).toBe(0)
      expect(released, "the export ended without drawing two frames").toBeDefined()
      // On the terminal: the frames, each over the last, and the line erased at the end; nothing else.
      expect(exported.output.replace(frame, "")).toBe("\r\x1b[2K")
      for (const [, , runs] of exported.output.matchAll(frame)) {
        if (runs !== undefined) expect(Number(runs)).toBe(allIds(prepared).length)
      }
      const events = ndjson(readFileSync(join(dir, "export.ndjson"), "utf8"))
      expect(new Set(events.map((e) => e["runId"]))).toEqual(new Set(allIds(prepared)))
    } finally {
      await (released ?? lock.release())
    }
  })
})

describe("the writing commands on Postgres", () => {
  it("replay serves from the log; resume finishes a failed run running only what was not completed; rollback undoes", async () => {
    const replay = await run("replay", prepared.flaky)
    expect(replay.code, replay.stderr).toBe(0)
    const before = bodies()
    const resumed = await run("resume", prepared.report, "--json")
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ status: "completed", served: ["fetch#0", "summarize#0"] })
    expect(bodies().slice(before.length)).toEqual(["write-file", "deliver"])
    const rolledBack = await run("rollback", prepared.storm[1]!, "--json")
    expect(rolledBack.code, rolledBack.stderr).toBe(0)
    expect(JSON.parse(rolledBack.stdout).status).toBe("rolled_back")
    const reset = await run("breaker", "reset", "storm")
    expect(reset.code, reset.stderr).toBe(0)
  }, 240_000)
})

describe("a Postgres store the CLI cannot use", () => {
  it("an unreachable server is one line naming the URL without its password", async () => {
    // A port nobody listens on.
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, "127.0.0.1", () => {
        const address = server.address()
        server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
      })
    })
    const result = await ledgerflow(["--db", `postgres://ledger:s3cret-pw@127.0.0.1:${port}/ledger`, "runs"])
    const line = oneLine(result)
    expect(line).toMatch(/cannot reach the Postgres server/)
    expect(line).toContain(`postgres://ledger:***@127.0.0.1:${port}/ledger`)
    expect(result.stderr).not.toContain("s3cret-pw")
  })

  it("a wrong password, and a database without a store (left without one), are one line each", async () => {
    const wrong = new URL(url)
    wrong.password = "not-the-password"
    const refused = oneLine(await ledgerflow(["--db", wrong.toString(), "runs"]))
    expect(refused).toMatch(/refused the login/)
    expect(refused).not.toContain("not-the-password")
    const empty = await freshDatabase()
    const none = oneLine(await ledgerflow(["--db", empty, "runs"]))
    expect(none).toMatch(/no ledgerflow store in the schema ledgerflow of/)
    expect(none).not.toContain(new URL(empty).password)
    expect(oneLine(await ledgerflow(["--db", empty, "runs"]))).toBe(none)
  }, 240_000)
})
