/**
 * Vitest global setup: one real Postgres server for the whole test run (./embeddedPostgres.ts). Test files
 * get their own databases from `freshDatabase` (./postgres.ts). If the server cannot start, the run fails
 * here with the reason: no Postgres test is skipped.
 */
import type { TestProject } from "vitest/node"
import { startServer } from "./embeddedPostgres.js"

export default async function setup(project: TestProject) {
  const server = await startServer()
  project.provide("ledgerflowPostgres", server.url)
  return server.stop
}
