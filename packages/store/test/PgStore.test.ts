/**
 * What the Postgres store does beyond the conformance suite: its migrations (a newer schema refused, a
 * foreign schema untouched, workers opening a new store at once), group commit, and messages that never
 * show the URL's password, and waits woken by other workers' writes through LISTEN/NOTIFY.
 */
import { describe, expect, it } from "@effect/vitest"
import { Event, EventStore } from "@ledgerflow/core"
import { PgStore } from "@ledgerflow/store"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import pg from "pg"
import { freshDatabase } from "../../../test/support/postgres.js"
import { forkParked } from "./conformance.js"

const query = async (url: string, text: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

/** Open the store and run `body` on it; the exit, so refusals can be inspected. */
const withStore = <A, E>(options: PgStore.Options, body: Effect.Effect<A, E, EventStore.EventStore>) =>
  Effect.runPromiseExit(Effect.provide(body, PgStore.layer(options)))

const claim = (store: EventStore.EventStoreService, i: number) =>
  store.claim({
    runId: `run-${String(i).padStart(2, "0")}`,
    pipeline: "reports",
    version: "1",
    key: `key-${i}`,
    owner: "worker-1",
    now: 1_000,
    leaseExpiresAt: 31_000,
    events: [Event.encode(new Event.RunResumed({ at: 1_000, reason: "test" }))]
  })

describe("PgStore migrations", () => {
  it("a store whose schema is newer than the code is refused, untouched", async () => {
    const url = await freshDatabase()
    expect((await withStore({ url }, Effect.void))._tag).toBe("Success")
    await query(url, `UPDATE ledgerflow.ledgerflow_meta SET value = '${PgStore.schemaVersion + 1}' WHERE key = 'schema_version'`)
    const exit = await withStore({ url }, Effect.void)
    expect(exit._tag).toBe("Failure")
    expect(JSON.stringify(exit)).toContain("StoreTooNew")
    expect(JSON.stringify(exit)).toMatch(/written by a newer ledgerflow .*upgrade ledgerflow/)
    expect(await query(url, "SELECT value FROM ledgerflow.ledgerflow_meta WHERE key = 'schema_version'")).toEqual([
      { value: String(PgStore.schemaVersion + 1) }
    ])
  })

  it("a schema holding other tables is refused and left as it was; another schema name stores beside it", async () => {
    const url = await freshDatabase()
    await query(url, "CREATE SCHEMA ledgerflow; CREATE TABLE ledgerflow.users (id INT)")
    const exit = await withStore({ url }, Effect.void)
    expect(JSON.stringify(exit)).toContain("NotALedgerflowStore")
    expect(await query(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ledgerflow'")).toEqual([
      { table_name: "users" }
    ])
    expect((await withStore({ url, schema: "ledger" }, Effect.void))._tag).toBe("Success")
  })

  it("8 workers opening a new store at once migrate it once, and all serve it", async () => {
    const url = await freshDatabase()
    const exits = await Promise.all(
      Array.from({ length: 8 }, (_, i) => withStore({ url, maxConnections: 2 }, Effect.flatMap(EventStore.EventStore, (s) => claim(s, i))))
    )
    expect(exits.map((exit) => exit._tag)).toEqual(Array(8).fill("Success"))
    expect(await query(url, "SELECT count(*)::int AS n FROM ledgerflow.runs")).toEqual([{ n: 8 }])
  })

  it("layerConfig reads the URL from configuration", async () => {
    const url = await freshDatabase()
    const layer = PgStore.layerConfig({ url: Config.redacted("DATABASE_URL") }).pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", url]]))))
    )
    const runs = await Effect.runPromise(
      Effect.provide(Effect.flatMap(EventStore.EventStore, (s) => s.listRuns({})), layer)
    )
    expect(runs).toEqual([])
  })
})

describe("PgStore writes", () => {
  it("16 runs appending at once share transactions (group commit): fewer commits than appends", async () => {
    const url = await freshDatabase()
    await withStore(
      { url },
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* Effect.forEach(Array.from({ length: 16 }, (_, i) => i), (i) => claim(store, i), { concurrency: "unbounded" })
        yield* Effect.forEach(
          Array.from({ length: 16 }, (_, i) => i),
          (i) =>
            store.append({
              runId: `run-${String(i).padStart(2, "0")}`,
              token: 1,
              events: [Event.encode(new Event.RunResumed({ at: 2_000, reason: "step" }))],
              now: 2_000
            }),
          { concurrency: "unbounded" }
        )
      })
    )
    // Each row's xmin is the transaction that inserted it.
    const [appended] = await query(url, "SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS commits FROM ledgerflow.events WHERE seq = 2")
    expect(appended.n).toBe(16)
    expect(appended.commits).toBeLessThan(8)
  })
})

describe("PgStore waits (LISTEN/NOTIFY)", () => {
  /** A store of its own (its own pool and listening connection) on the database, as another worker has. */
  const worker = (url: string) => Effect.map(Layer.build(PgStore.layer({ url, maxConnections: 2 })), Context.get(EventStore.EventStore))

  /** Two workers on a fresh database; the finishing one holds run-01 (token 1). */
  const twoWorkers = Effect.gen(function*() {
    const url = yield* Effect.promise(() => freshDatabase())
    const [waiting, finishing] = [yield* worker(url), yield* worker(url)]
    yield* claim(finishing, 1)
    return { url, waiting, finishing }
  })

  /** Run `run-NN` of `claim`, completed by `store` (token 1). */
  const complete = (store: EventStore.EventStoreService, runId: string) =>
    store.append({ runId, token: 1, now: 2_000, events: [Event.encode(new Event.RunResumed({ at: 2_000, reason: "done" }))], patch: { status: "completed" } })

  it.scoped("a waiter is woken by another worker's completion, sent on its own connection: a 60 s wait ends without the clock moving", () =>
    Effect.gen(function*() {
      const { finishing, waiting } = yield* twoWorkers
      const waiter = yield* forkParked(waiting.awaitRunChange("run-01", "60 seconds"))
      expect(waiter.unsafePoll()).toBeNull()
      yield* complete(finishing, "run-01")
      yield* Fiber.join(waiter)
    }))

  it.scoped("a lost listening connection wakes its waiters (they may have missed a change); the next wait listens again", () =>
    Effect.gen(function*() {
      const { finishing, url, waiting } = yield* twoWorkers
      const first = yield* forkParked(waiting.awaitRunChange("run-01", "60 seconds"))
      const listeners = "SELECT pid FROM pg_stat_activity WHERE application_name = 'ledgerflow-listen' AND datname = current_database()"
      const [lost] = yield* Effect.promise(() => query(url, listeners))
      yield* Effect.promise(() => query(url, `SELECT pg_terminate_backend(${lost.pid})`))
      yield* Fiber.join(first)
      // Still held: the wait starts again, on a new listening connection, and hears the completion.
      const second = yield* forkParked(waiting.awaitRunChange("run-01", "60 seconds"))
      const now = yield* Effect.promise(() => query(url, listeners))
      expect(now.map((row) => row.pid)).not.toContain(lost.pid)
      expect(now).toHaveLength(1)
      yield* complete(finishing, "run-01")
      yield* Fiber.join(second)
    }))
})

describe("PgStore messages", () => {
  it("an unreachable server says so, naming the URL without its password", async () => {
    const exit = await withStore({ url: "postgres://app:hunter2-secret@127.0.0.1:1/ledger", connectTimeout: "2 seconds" }, Effect.void)
    const text = JSON.stringify(exit)
    expect(text).toContain("cannot reach the Postgres server of the ledgerflow store postgres://app:***@127.0.0.1:1/ledger")
    expect(text).not.toContain("hunter2-secret")
  })
})
