/**
 * A fresh clone after `pnpm install` alone (no build): `pnpm ledgerflow --help` at the root and
 * `npx ledgerflow --help` in examples/ print the help — the bin runs the TypeScript sources when a
 * package's dist is missing — and a mistake is one line, never a stack trace.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { pnpm, repoRoot, run, transcript, userEnv } from "./fixtures/commands.js"

describe("a fresh clone after pnpm install alone", () => {
  it("runs the ledgerflow bin from the sources, at the root and in examples/", async () => {
    const clone = mkdtempSync(join(tmpdir(), "ledgerflow-clone-"))
    try {
      // The files a clone has: tracked, plus new ones not ignored (so a change is tested before its commit).
      const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repoRoot })
        .toString("utf8").split("\0").filter((f) => f !== "" && existsSync(join(repoRoot, f)))
      for (const file of files) {
        mkdirSync(dirname(join(clone, file)), { recursive: true })
        copyFileSync(join(repoRoot, file), join(clone, file))
      }
      const env = userEnv()
      const pn = (args: ReadonlyArray<string>, cwd: string) => run(pnpm[0]!, [...pnpm.slice(1), ...args], { cwd, env })
      const installed = await pn(["install", "--frozen-lockfile", "--prefer-offline"], clone)
      expect(installed.code, transcript(installed)).toBe(0)
      expect(existsSync(join(clone, "packages", "core", "dist"))).toBe(false)

      const root = await pn(["ledgerflow", "--help"], clone)
      expect(root.code, transcript(root)).toBe(0)
      expect(root.stdout).toContain("$ ledgerflow [--db PATH]")
      // npx is npm's: it would warn of pnpm's store-dir setting, which only pnpm needs.
      const npxEnv = { ...env, npm_config_store_dir: undefined }
      const examples = await run("npx", ["ledgerflow", "--help"], { cwd: join(clone, "examples"), env: npxEnv })
      expect(examples.code, transcript(examples)).toBe(0)
      expect(examples.stdout).toContain("$ ledgerflow [--db PATH]")

      const missing = await run("npx", ["ledgerflow", "show", "run_x", "--db", "nowhere.db"], { cwd: join(clone, "examples"), env: npxEnv })
      expect(missing.code).toBe(2)
      expect(missing.stderr.trimEnd().split("\n"), transcript(missing)).toHaveLength(1)
      expect(missing.stderr).not.toMatch(/\n\s+at /)
    } finally {
      rmSync(clone, { recursive: true, force: true })
    }
  }, 15 * 60_000)
})
