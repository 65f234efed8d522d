import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const examples = fileURLToPath(new URL("..", import.meta.url))

describe("the demo (the README's first command)", () => {
  it("tells the three incidents with the stand-in's meter: 105 calls naive, 5 with ledgerflow, 0 to resume, 1 summary", () => {
    // Run in a copy of the examples folder, so the test leaves the user's .ledgerflow/ alone.
    const dir = mkdtempSync(join(tmpdir(), "ledgerflow-demo-"))
    cpSync(join(examples, "src"), join(dir, "src"), { recursive: true })
    cpSync(join(examples, "ledgerflow.config.ts"), join(dir, "ledgerflow.config.ts"))
    cpSync(join(examples, "package.json"), join(dir, "package.json"))
    symlinkSync(join(examples, "node_modules"), join(dir, "node_modules"))
    const env = { ...process.env }
    delete env["ANTHROPIC_API_KEY"]
    const result = spawnSync(process.execPath, ["--import", "tsx", "src/demo.ts"], { cwd: dir, encoding: "utf8", env })
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    const out = result.stdout
    expect(out).toContain("21 deliveries → 105 Claude calls billed")
    expect(out).toContain("21 deliveries → 5 Claude calls billed")
    // Told from the ledger: the run counted 21 deliveries, and the 20 redeliveries saved money.
    expect(out).toMatch(/the ledger: 21 deliveries, 1 execution, \$0\.\d*[1-9]\d* saved; \$0\.\d*[1-9]\d* held/)
    expect(out).toContain("Claude calls billed by the resume: 0")
    expect(out).toContain("Claude calls billed for both starts: 1")
    expect(out).toMatch(/LoopLimitExceeded: .*triage-bot/)
    expect(out).toContain("$ ledgerflow cost --by step")
    expect(out).toContain("$ ledgerflow failures")
    expect(out).not.toContain("Invalid subcommand")
  }, 180_000)
})
