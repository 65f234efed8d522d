/**
 * What the `pg` client really throws when Postgres or the connection to it fails, made by the real library
 * against the real embedded server, and how the classifier reads it: a lost connection heals (Transient),
 * a missing column does not (Deterministic).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { describe, expect, it } from "@effect/vitest"
import { Failure } from "@ledgerflow/core"
import { Effect, Redacted } from "effect"
import * as net from "node:net"
import pg from "pg"
import { freshDatabase } from "./support/postgres.js"
import { startServer } from "./support/embeddedPostgres.js"

/** What the promise rejected with. */
const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the call to fail")
}

const verdict = (error: unknown) => {
  const failure = Failure.classify(error)
  return { kind: Failure.isTransient(failure) ? "transient" : "deterministic", reason: failure.reason }
}

const connected = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  client.on("error", () => undefined)
  await client.connect()
  return client
}

/** Terminate `client`'s backend from another connection, as an operator (or a failover) would. */
const terminate = async (url: string, client: pg.Client) => {
  const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid
  const killer = await connected(url)
  try {
    await killer.query("SELECT pg_terminate_backend($1)", [pid])
  } finally {
    await killer.end()
  }
  return pid
}

describe("the classifier on what pg throws", () => {
  it("a backend terminated mid-query (57P01), then a query on that client: both transient", async () => {
    const url = await freshDatabase()
    const client = await connected(url)
    const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid
    const sleeping = rejection(client.query("SELECT pg_sleep(30)"))
    const killer = await connected(url)
    // Wait until the query runs, then terminate its backend.
    while ((await killer.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 0);
    await killer.query("SELECT pg_terminate_backend($1)", [pid])
    await killer.end()
    const midQuery = await sleeping
    expect(verdict(midQuery)).toMatchObject({ kind: "transient" })
    expect(verdict(midQuery).reason).toMatch(/57P01|Connection terminated/)
    const after = await rejection(client.query("SELECT 1"))
    expect(after).toBeInstanceOf(Error)
    expect(verdict(after)).toEqual({ kind: "transient", reason: expect.stringContaining("rule: postgres-client") })
  })

  it("a backend terminated while idle: the next query on its client is transient", async () => {
    const url = await freshDatabase()
    const client = await connected(url)
    await terminate(url, client)
    const error = await rejection(client.query("SELECT 1"))
    expect(verdict(error).kind).toBe("transient")
  })

  it("a query on a client that was ended is transient (a new connection may succeed)", async () => {
    const client = await connected(await freshDatabase())
    await client.end()
    const error = await rejection(client.query("SELECT 1"))
    expect(error instanceof Error && error.message).toBe("Client was closed and is not queryable")
    expect(verdict(error)).toEqual({ kind: "transient", reason: expect.stringContaining("rule: postgres-client") })
  })

  it("a connect timeout (a server that accepts and never answers) and a pool's wait for a connection: transient", async () => {
    const silent = net.createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const address = silent.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      const client = new pg.Client({ host: "127.0.0.1", port, user: "x", database: "x", connectionTimeoutMillis: 300 })
      client.on("error", () => undefined)
      const error = await rejection(client.connect())
      expect(verdict(error)).toEqual({ kind: "transient", reason: expect.stringContaining("rule: postgres-client") })
    } finally {
      silent.close()
    }
    const pool = new pg.Pool({ connectionString: await freshDatabase(), max: 1, connectionTimeoutMillis: 200 })
    const held = await pool.connect()
    try {
      const error = await rejection(pool.connect())
      expect(error instanceof Error && error.message).toBe("timeout exceeded when trying to connect")
      expect(verdict(error).kind).toBe("transient")
    } finally {
      held.release()
      await pool.end()
    }
  })

  it("through @effect/sql-pg, a terminated backend's SqlError is transient and a missing column deterministic", async () => {
    const url = await freshDatabase()
    const [lost, missing] = await Effect.runPromise(
      Effect.gen(function*() {
        const sql = yield* PgClient.make({ url: Redacted.make(url) })
        yield* sql.unsafe("CREATE TABLE reports (id INT)")
        const sleeping = yield* Effect.fork(Effect.flip(sql.unsafe("SELECT pg_sleep(30)")))
        const admin = yield* Effect.promise(() => connected(url))
        while (
          (yield* Effect.promise(() =>
            admin.query("SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")
          )).rowCount === 0
        );
        yield* Effect.promise(() =>
          admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")
        )
        yield* Effect.promise(() => admin.end())
        const lost = yield* sleeping.await
        // On a client of its own: the first pool may still hand out the connection the server just ended,
        // whose query then fails as a lost connection (transient) instead of reaching the missing column.
        const fresh = yield* PgClient.make({ url: Redacted.make(url) })
        const missing = yield* Effect.flip(fresh.unsafe("INSERT INTO reports (id, region) VALUES (1, 'eu')"))
        return [lost, missing] as const
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
    )
    expect(lost._tag).toBe("Success")
    if (lost._tag === "Success") expect(verdict(lost.value).kind).toBe("transient")
    expect(verdict(missing)).toEqual({ kind: "deterministic", reason: expect.stringContaining("42703") })
  })

  it("a server stopped mid-query, then gone: transient both times", async () => {
    const server = await startServer()
    let stopped = false
    try {
      const client = await connected(server.url)
      const sleeping = rejection(client.query("SELECT pg_sleep(30)"))
      await new Promise((resolve) => setTimeout(resolve, 200))
      await server.stop()
      stopped = true
      expect(verdict(await sleeping).kind).toBe("transient")
      const refused = await rejection(new pg.Client({ connectionString: server.url }).connect())
      expect(verdict(refused)).toEqual({ kind: "transient", reason: expect.stringContaining("ECONNREFUSED") })
    } finally {
      if (!stopped) await server.stop()
    }
  })
})
