/**
 * The README's CLI table must say what `--help` says: every command it lists exists, and every option it
 * gives a command is one that command's help documents.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { ledgerflow } from "./fixtures/cli.js"

const readme = readFileSync(fileURLToPath(new URL("../../../README.md", import.meta.url)), "utf8")
const section = readme.slice(readme.indexOf("## The CLI"), readme.indexOf("## How it compares"))
const rows = [...section.matchAll(/^\| `ledgerflow ([^`]+)` \|/gm)].map((m) => m[1]!.replaceAll("\\|", "|"))

describe("the README's CLI reference", () => {
  it("lists the commands", () => {
    expect(rows.length).toBeGreaterThanOrEqual(9)
  })

  for (const row of rows) {
    const words = row.split(" ")
    const command = words.filter((w) => /^[a-z]+$/.test(w)).slice(0, 2)
    it(`\`ledgerflow ${row}\` matches its --help`, async () => {
      const help = await ledgerflow([...command, "--help"])
      expect(help.code).toBe(0)
      for (const flag of row.match(/--[a-z-]+/g) ?? []) expect(help.stdout).toContain(flag)
      for (const arg of row.match(/<[a-z]+>/g) ?? []) expect(help.stdout).toContain(arg)
    })
  }
})

describe("the README's example", () => {
  it("is examples/src/quickstart.ts, which the build type-checks", () => {
    const example = readFileSync(fileURLToPath(new URL("../../../examples/src/quickstart.ts", import.meta.url)), "utf8")
    expect(readme).toContain("```ts\n" + example + "```")
  })
})
