/**
 * Every command explains itself with --help, an example included; --version prints the package's version.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { ledgerflow } from "./fixtures/cli.js"

const commands = [[], ["runs"], ["show"], ["replay"], ["resume"], ["rollback"], ["failures"], ["export"], ["cost"], ["breaker"], ["breaker", "list"], ["breaker", "reset"], ["ui"]]

describe("--help", () => {
  it("every command prints its help with an example, within 80 columns, exit 0; usage starts with ledgerflow and the command's path; options and arguments are described in words of their own, with no type blurb", async () => {
    const results = await Promise.all(commands.map((command) => ledgerflow([...command, "--help"])))
    results.forEach((result, i) => {
      const name = ["ledgerflow", ...commands[i]!].join(" ")
      expect(result.code, name).toBe(0)
      expect(result.stdout, name).toContain("Examples")
      expect(result.stdout, name).toContain(`$ ${commands[i]!.length === 0 ? "ledgerflow " : name}`)
      expect(result.stdout).not.toMatch(/\x1b\[/)
      for (const line of result.stdout.split("\n")) expect(line.length, `${name}: ${line}`).toBeLessThanOrEqual(80)
      expect(result.stdout.split("USAGE\n\n")[1]!.split("\n")[0]).toMatch(new RegExp(`^\\$ ${name}( |$)`))
      for (const blurb of ["A user-defined piece of text.", "A true or false value.", "An integer."]) {
        expect(result.stdout, name).not.toContain(blurb)
      }
      // Every option and argument block has a description paragraph after its name.
      const at = result.stdout.indexOf("\nARGUMENTS") >= 0 ? result.stdout.indexOf("\nARGUMENTS") : result.stdout.indexOf("\nOPTIONS")
      for (const block of result.stdout.slice(at).split(/\n(?=--|<|\(-)/).slice(1)) {
        const description = block.split("\n").slice(1).filter((l) => l.trim() !== "" && l.trim() !== "This setting is optional.")
        expect(description.length, `${name}: ${block}`).toBeGreaterThan(0)
      }
    })
  }, 240_000) // a spawn per command: slow on a loaded 2-core machine

  it("the global options are listed on every command and documented once", async () => {
    const result = await ledgerflow(["runs", "--help"])
    for (const option of ["--db PATH", "--config PATH", "--json", "--debug"]) expect(result.stdout).toContain(option)
    expect(result.stdout.replace(/\s+/g, " ")).toContain("Default: $LEDGERFLOW_DB, else .ledgerflow/ledger.db")
  })

  it("ledgerflow alone prints the help", async () => {
    const [alone, help] = await Promise.all([ledgerflow([]), ledgerflow(["--help"])])
    expect(alone.code).toBe(0)
    expect(alone.stdout).toBe(help.stdout)
  })
})

describe("--version", () => {
  it("prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
    const result = await ledgerflow(["--version"])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(version)
  })
})
