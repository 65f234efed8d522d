/**
 * A fresh database on the test run's Postgres server (started once by ./postgresServer.ts): each test file
 * (or each conformance test) gets its own, so files running at once never see each other's runs.
 */
import { randomUUID } from "node:crypto"
import pg from "pg"
import { inject } from "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    /** The server's admin URL (database `postgres`): test files create their databases through it. */
    ledgerflowPostgres: string
  }
}


/** The admin URL of the run's server. */
export const serverUrl = (): string => inject("ledgerflowPostgres")

/** Run `statement` on the server's `postgres` database. */
export const admin = async (statement: string, url: string = serverUrl()): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end()
  }
}

/** Create an empty database and return its URL. */
export const freshDatabase = async (url: string = serverUrl()): Promise<string> => {
  const name = `ledgerflow_${randomUUID().replaceAll("-", "")}`
  await admin(`CREATE DATABASE ${name}`, url)
  const target = new URL(url)
  target.pathname = `/${name}`
  return target.toString()
}

/**
 * Run `statements` on `url` in a transaction left open, so that the locks they take are held, until
 * `release` commits it and closes the connection.
 */
export const openTransaction = async (url: string, ...statements: ReadonlyArray<string>): Promise<{ release: () => Promise<void> }> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query("BEGIN")
  for (const statement of statements) await client.query(statement)
  return {
    release: async () => {
      try {
        await client.query("COMMIT")
      } finally {
        await client.end()
      }
    }
  }
}
