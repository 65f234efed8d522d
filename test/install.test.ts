/**
 * A team adds ledgerflow to its own pnpm monorepo, as the README's "Add ledgerflow to your project" says:
 * the three packages are published to a local registry (Verdaccio, on 127.0.0.1, storage in a temp dir),
 * installed by name into a fresh workspace outside this repository whose `.npmrc` sends only the
 * `@ledgerflow` scope there, and the README's steps run there line for line — the files are the README's
 * code blocks, the commands its shell blocks.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import type { Server } from "node:http"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { runServer } from "verdaccio"
import { type Finished, pnpm, repoRoot, run, transcript, userEnv } from "./fixtures/commands.js"

const readme = readFileSync(join(repoRoot, "README.md"), "utf8")
const start = readme.indexOf("## Add ledgerflow to your project")
const section = readme.slice(start, readme.indexOf("\n## ", start + 1))

interface Block {
  readonly lang: string
  readonly lines: ReadonlyArray<string>
}
const blocks: ReadonlyArray<Block> = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({
  lang: m[1]!,
  lines: m[2]!.replace(/\n$/, "").split("\n")
}))
/** A code block whose first line names its file (`// src/main.ts`, `# pnpm-workspace.yaml`). */
const files = blocks.flatMap((b) => {
  const name = /^(?:\/\/|#) ([\w./-]+)$/.exec(b.lines[0] ?? "")?.[1]
  return b.lang !== "sh" && name !== undefined ? [{ name, text: `${b.lines.join("\n")}\n` }] : []
})
/** The commands of the shell blocks, in order, without their comments. */
const commands = blocks.filter((b) => b.lang === "sh").flatMap((b) =>
  b.lines.map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l !== "")
)

const startRegistry = async (dir: string) => {
  writeFileSync(
    join(dir, "config.yaml"),
    [
      "storage: ./storage",
      "auth:",
      "  htpasswd:",
      "    file: ./htpasswd",
      "uplinks: {}",
      "packages:",
      "  '@ledgerflow/*':",
      "    access: $all",
      "    publish: $authenticated",
      "log: { type: stdout, format: pretty, level: fatal }",
      "web: { enable: false }",
      ""
    ].join("\n")
  )
  const server: Server = await runServer(join(dir, "config.yaml"))
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("Verdaccio is not listening on TCP")
  const port = address.port
  const url = `http://127.0.0.1:${port}/`
  // A user to publish as: Verdaccio answers the npm login request with a token.
  const login = await fetch(`${url}-/user/org.couchdb.user:ledgerflow`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "ledgerflow", password: "ledgerflow-e2e" })
  })
  const reply: unknown = await login.json()
  const token = typeof reply === "object" && reply !== null && "token" in reply ? String(reply.token) : ""
  if (token === "") throw new Error(`Verdaccio refused the publishing user: ${JSON.stringify(reply)}`)
  return { url, port, token, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

const expectOk = (f: Finished) => expect(f.code, transcript(f)).toBe(0)

/** One line a person runs: `pnpm …` with the test's pnpm, `node …` with this Node. */
const runLine = (line: string, cwd: string, env: NodeJS.ProcessEnv) => {
  const [head, ...args] = line.split(/\s+/)
  if (head === "pnpm") return run(pnpm[0]!, [...pnpm.slice(1), ...args], { cwd, env })
  if (head === "node") return run(process.execPath, args, { cwd, env })
  throw new Error(`the README's install section runs \`${line}\`; teach this test what \`${head}\` is`)
}

describe("a team adds ledgerflow to its pnpm monorepo from a registry", () => {
  it("the README's section names its files and commands", () => {
    expect(files.map((f) => f.name).sort()).toEqual(
      ["ledgerflow.config.ts", "pnpm-workspace.yaml", "src/main.ts", "src/report.ts", "tsconfig.json"]
    )
    expect(commands[0]).toBe("pnpm add @ledgerflow/core @ledgerflow/store @ledgerflow/cli effect@^3.22")
    expect(section).toContain("Layer.provide(SqliteStore.layer(")
    expect(section).not.toContain("provideMerge(")
    expect(section).toContain("NodeRuntime.runMain(main)")
  })

  // A first install on a machine compiles better-sqlite3 (minutes on 2 busy cores); later ones take it
  // from the pnpm store's cache of built packages, and the whole test takes a minute or two.
  it("publishes the packages, installs them by name outside the repository, runs the README's pipeline and the installed CLI on its ledger", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "ledgerflow-install-"))
    const registry = await startRegistry(tmp)
    try {
      // Publish as a release does: prepack builds, `workspace:^` becomes the real version.
      const auth = join(tmp, "publish.npmrc")
      writeFileSync(auth, `//127.0.0.1:${registry.port}/:_authToken=${registry.token}\n`)
      const published = await run(
        pnpm[0]!,
        [...pnpm.slice(1), "-r", "--filter", "./packages/*", "publish", "--no-git-checks", "--registry", registry.url],
        { cwd: repoRoot, env: userEnv({ npm_config_userconfig: auth }) }
      )
      expectOk(published)
      for (const name of ["core", "store", "cli"]) {
        const meta = await fetch(`${registry.url}@ledgerflow%2f${name}`)
        expect(meta.status, `@ledgerflow/${name} is in the registry`).toBe(200)
      }

      // The user's monorepo: the scope points at the local registry, everything else at npm's.
      const workspace = join(tmp, "acme")
      const app = join(workspace, "reports")
      mkdirSync(join(app, "src"), { recursive: true })
      writeFileSync(join(workspace, ".npmrc"), `@ledgerflow:registry=${registry.url}\n`)
      writeFileSync(join(workspace, "package.json"), JSON.stringify({ name: "acme", private: true }, null, 2))
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "reports", private: true, type: "module" }, null, 2))
      const settings = files.find((f) => f.name === "pnpm-workspace.yaml")!
      writeFileSync(join(workspace, "pnpm-workspace.yaml"), `packages:\n  - reports\n${settings.text}`)
      for (const f of files.filter((f) => f.name !== "pnpm-workspace.yaml")) {
        mkdirSync(dirname(join(app, f.name)), { recursive: true })
        writeFileSync(join(app, f.name), f.text)
      }

      const env = userEnv()
      const outputs: Array<Finished> = []
      let runId = ""
      for (const line of commands) {
        const result = await runLine(line.replace("<run>", runId), app, env)
        expectOk(result)
        outputs.push(result)
        if (line === "pnpm exec ledgerflow runs") {
          const listed = await runLine("pnpm exec ledgerflow runs --json", app, env)
          expectOk(listed)
          const runs: Array<unknown> = listed.stdout.trim().split("\n").map((l) => JSON.parse(l))
          expect(runs).toHaveLength(1)
          const first = runs[0]
          runId = typeof first === "object" && first !== null && "runId" in first ? String(first.runId) : ""
          expect(runId).not.toBe("")
        }
      }
      const output = (prefix: string) => outputs.find((o) => o.command.includes(prefix))!

      // One Effect and one SQLite in the install.
      const installed = readdirSync(join(workspace, "node_modules", ".pnpm"))
      expect(installed.filter((d) => d.startsWith("effect@")), installed.join("\n")).toHaveLength(1)
      expect(installed.filter((d) => d.startsWith("better-sqlite3@")), installed.join("\n")).toHaveLength(1)

      // The pipeline ran on the stand-in and wrote its report; the CLI read its ledger.
      expect(output("dist/src/main.js").stdout + output("dist/src/main.js").stderr).toContain("report written to reports/acme.md")
      expect(readFileSync(join(app, "reports", "acme.md"), "utf8").length).toBeGreaterThan(0)
      expect(existsSync(join(app, ".ledgerflow", "ledger.db"))).toBe(true)
      expect(output("ledgerflow runs").stdout).toMatch(/ad-report[\s\S]*completed|completed[\s\S]*ad-report/)
      expect(output("ledgerflow show").stdout).toContain("summarize")
      expect(output("ledgerflow show").stdout).toContain("save")
      expect(output("ledgerflow replay").stdout).toContain("served")

      // Effect 4 in a user's project: pnpm names ledgerflow in its peer warning.
      const effect4 = join(tmp, "effect4")
      mkdirSync(effect4)
      writeFileSync(join(effect4, ".npmrc"), `@ledgerflow:registry=${registry.url}\n`)
      writeFileSync(join(effect4, "package.json"), JSON.stringify({ name: "effect4", private: true, type: "module" }))
      const withEffect4 = await runLine("pnpm add @ledgerflow/core effect@4 --lockfile-only", effect4, env)
      expectOk(withEffect4)
      expect(withEffect4.stdout + withEffect4.stderr).toMatch(/@ledgerflow\/core[\s\S]*unmet peer effect@\^3\.22/)
    } finally {
      await registry.close()
      rmSync(tmp, { recursive: true, force: true })
    }
  }, 30 * 60_000)
})
