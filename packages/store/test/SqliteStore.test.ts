import { Migrator, SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Engine, Event, EventStore, Failure, Journal, Pipeline, Step, Usage } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process"
import { createHash, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll } from "vitest"
import * as internalOpen from "../src/internal/open.js"
import { forkParked } from "./conformance.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-sqlite-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const repository = fileURLToPath(new URL("../../..", import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

const freshFile = () => path.join(root, randomUUID(), ".ledgerflow", "ledger.db")

/** Opens the store in the current scope, as its layer does, with the store's own SQL client beside it. */
const open = (options: SqliteStore.Options) => internalOpen.open(options)

const digest = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

const mode = (file: string) => fs.statSync(file).mode & 0o777

const claim = (runId: string, key: string): EventStore.ClaimRequest => ({
  runId,
  pipeline: "reports",
  version: "1",
  key,
  owner: "worker-1",
  now: 1_000,
  leaseExpiresAt: 31_000,
  events: [
    Event.encode(
      new Event.RunStarted({ at: 1_000, pipeline: "reports", version: "1", key, input: null, inputHash: "h" })
    )
  ]
})

/** Runs `node --conditions=source --import tsx <fixture> ...args` from the repository root. */
const node = (script: string, args: ReadonlyArray<string>) =>
  spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture(script), ...args], {
    cwd: repository,
    stdio: ["pipe", "pipe", "pipe"]
  })

/**
 * Runs a fixture as root with the capabilities that let root ignore file modes dropped (also from the
 * bounding set, so the exec cannot regain them): the child is then refused a 0555 directory as any user
 * is, and still reads this checkout wherever it lives — a clone in a 0700 temp folder included, where
 * `nobody` could not. setpriv is util-linux; without it this test fails rather than skip.
 */
const asRootWithoutDac = (script: string, args: ReadonlyArray<string>) => {
  const caps = "-dac_override,-dac_read_search"
  if (spawnSync("setpriv", ["--version"]).error !== undefined) {
    throw new Error("this test runs as root and needs setpriv (util-linux) to drop root's file-mode override")
  }
  return spawn(
    "setpriv",
    [`--inh-caps=${caps}`, `--bounding-set=${caps}`, "--", process.execPath, "--conditions=source", "--import", "tsx", fixture(script), ...args],
    { cwd: repository, stdio: ["pipe", "pipe", "pipe"] }
  )
}

/** The child's stdout, line by line, and its stderr for failure messages. */
const linesOf = (child: ChildProcessWithoutNullStreams) => {
  let stderr = ""
  child.stderr.on("data", (chunk) => (stderr += String(chunk)))
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    next: async (): Promise<string> => {
      const line = await lines.next()
      if (line.done === true) throw new Error(`child process ended early; stderr:\n${stderr}`)
      return line.value
    }
  }
}

describe("SqliteStore", () => {
  it.scoped("creates the store's directory with mode 0700 and its file with mode 0600", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const { store } = yield* open({ filename })
      yield* store.claim(claim("run-1", "key-1"))
      expect(mode(path.dirname(filename))).toBe(0o700)
      expect(mode(filename)).toBe(0o600)
      // SQLite gives the log files beside it the store's own permissions.
      expect(mode(`${filename}-wal`)).toBe(0o600)
      expect(mode(`${filename}-shm`)).toBe(0o600)
    }))

  it.scoped("uses WAL, synchronous FULL, a 5 second busy timeout and foreign keys by default", () =>
    Effect.gen(function*() {
      const { sql, store } = yield* open({ filename: freshFile() })
      expect(yield* sql`PRAGMA journal_mode`).toEqual([{ journal_mode: "wal" }])
      expect(yield* sql`PRAGMA synchronous`).toEqual([{ synchronous: 2 }])
      expect(yield* sql`PRAGMA busy_timeout`).toEqual([{ timeout: 5_000 }])
      expect(yield* sql`PRAGMA foreign_keys`).toEqual([{ foreign_keys: 1 }])
      // Its own SqlClient reads the store's file.
      yield* store.claim(claim("run-1", "key-1"))
      expect(yield* sql`SELECT run_id, (SELECT max(seq) FROM events WHERE events.run_id = runs.run_id) AS n FROM runs`)
        .toEqual([{ run_id: "run-1", n: 1 }])
    }))

  it.scoped("the layer provides the engine's EventStore and never its SqlClient: a step's own SQL cannot reach the ledger", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const context = yield* Layer.build(SqliteStore.layer({ filename }))
      expect(Option.isSome(Context.getOption(context, EventStore.EventStore))).toBe(true)
      expect(Option.isNone(Context.getOption(context, SqlClient.SqlClient))).toBe(true)
      // What a step that needs a SqlClient sees, even with the store merged into the engine's layer: the
      // ledger does not satisfy it, so a step never runs its SQL on the ledger's connection.
      const reached = yield* Effect.serviceOption(SqlClient.SqlClient).pipe(
        Effect.provide(Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename }))))
      )
      expect(Option.isNone(reached)).toBe(true)
    }))

  it.scoped("synchronous NORMAL and the busy timeout are options", () =>
    Effect.gen(function*() {
      const { sql } = yield* open({ filename: freshFile(), synchronous: "normal", busyTimeout: "250 millis" })
      expect(yield* sql`PRAGMA synchronous`).toEqual([{ synchronous: 1 }])
      expect(yield* sql`PRAGMA busy_timeout`).toEqual([{ timeout: 250 }])
    }))

  it.effect("a reopened store keeps its runs and events and applies no migration twice", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* Effect.scoped(Effect.flatMap(open({ filename }), ({ store }) => store.claim(claim("run-1", "key-1"))))
      const { sql, store } = yield* open({ filename })
      expect(Option.getOrThrow(yield* store.getRun("run-1")).lastSeq).toBe(1)
      expect(yield* store.readEvents("run-1")).toHaveLength(1)
      expect(yield* sql`SELECT count(*) AS n FROM ledgerflow_migrations`).toEqual([
        { n: Object.keys(SqliteStore.migrations).length }
      ])
      expect(yield* sql`SELECT value FROM ledgerflow_meta WHERE key = 'schema_version'`).toEqual([
        { value: String(SqliteStore.schemaVersion) }
      ])
    }).pipe(Effect.scoped))

  it.effect("a waiter is not woken by another connection's completion (another process), but sees it when it reads the run again a second later", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const waiting = (yield* open({ filename })).store
      const other = (yield* open({ filename })).store
      yield* other.claim({ ...claim("run-1", "key-1"), leaseExpiresAt: 10_000_000 })
      const waiter = yield* forkParked(waiting.awaitRunChange("run-1", "60 seconds"))
      yield* other.append({ runId: "run-1", token: 1, now: 2_000, events: [], patch: { status: "completed" } })
      yield* TestClock.adjust("999 millis")
      expect(waiter.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 milli")
      yield* Fiber.join(waiter)
    }).pipe(Effect.scoped))

  it.effect("a store of schema 1 is migrated in place: runs and events kept, each run's last seq read from its log", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      fs.mkdirSync(path.dirname(filename), { recursive: true, mode: 0o700 })
      const first = "0001_create_runs_and_events"
      yield* Migrator.make({})({
        loader: Migrator.fromRecord({ [first]: SqliteStore.migrations[first]! }),
        table: "ledgerflow_migrations"
      }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.scoped)
      // A run as schema 1 kept it: its last seq in its row, its events in a rowid table.
      const db = new Database(filename)
      db.prepare(
        `INSERT INTO runs (run_id, pipeline, version, key, status, created_at, updated_at, last_seq, owner, lease_token,
           lease_expires_at) VALUES ('run-1', 'reports', '1', 'key-1', 'running', 1000, 1000, 3, 'worker-1', 1, 31000)`
      ).run()
      const events = [
        Event.encode(new Event.RunStarted({ at: 1_000, pipeline: "reports", version: "1", key: "key-1", input: {}, inputHash: "h" })),
        Event.encode(new Event.LeaseTaken({ at: 1_000, owner: "worker-1", token: 1, expiresAt: 31_000 })),
        Event.encode(new Event.StepCompleted({
          at: 1_500, stepId: "fetch#0", name: "fetch", inputHash: "i", attempt: 1, startedAt: 1_400, output: { rows: 3 }
        }))
      ]
      events.forEach((e, i) =>
        db.prepare("INSERT INTO events (run_id, seq, type, v, at, data) VALUES (?, ?, ?, ?, ?, ?)")
          .run("run-1", i + 1, e.type, e.v, e.at, e.data)
      )
      db.close()
      const { sql, store } = yield* open({ filename })
      expect(yield* sql`SELECT value FROM ledgerflow_meta WHERE key = 'schema_version'`).toEqual([
        { value: String(SqliteStore.schemaVersion) }
      ])
      // Schema 4 back-fills a run's deliveries: the one start that created it, at its creation.
      expect(Option.getOrThrow(yield* store.getRun("run-1"))).toMatchObject({
        status: "running",
        lastSeq: 3,
        leaseToken: 1,
        deliveries: 1,
        lastDeliveredAt: 1_000
      })
      expect((yield* store.readEvents("run-1")).map((e) => e.data)).toEqual(events.map((e) => e.data))
      expect(yield* store.append({ runId: "run-1", token: 1, expectedSeq: 3, events: [events[2]!], now: 2_000 })).toBe(4)
    }).pipe(Effect.scoped))

  it.live(
    "a store of schema 2 is migrated in place: completions get their step columns from their bodies, and a failed run resumes serving them",
    () =>
      Effect.gen(function*() {
        // A run as the engine writes it: fetch and a paid summarize complete, then insert fails deterministically.
        const bodies = { fetch: 0, summarize: 0, insert: 0 }
        let insertFails = true
        const fetch = Step.make({
          name: "fetch",
          input: Schema.String,
          output: Schema.Struct({ rows: Schema.Number }),
          run: (account) => Effect.sync(() => (bodies.fetch++, { rows: account.length }))
        })
        const summarize = Step.make({
          name: "summarize",
          input: Schema.Number,
          output: Schema.String,
          run: (rows, context) =>
            context.reportUsage(new Usage.Usage({ model: "claude-x", inputTokens: 100, outputTokens: 20 })).pipe(
              Effect.zipRight(Effect.sync(() => (bodies.summarize++, `summary of ${rows} rows`)))
            )
        })
        const insert = Step.make({
          name: "insert",
          input: Schema.String,
          output: Schema.Number,
          run: () =>
            Effect.suspend(() => (bodies.insert++, insertFails
              ? Effect.fail(Failure.deterministic("no such column: region", { rule: "sqlite-code" }))
              : Effect.succeed(7)))
        })
        const pipeline = Pipeline.make({
          name: "report",
          version: 1,
          input: Schema.String,
          output: Schema.Number,
          run: (account) =>
            Effect.gen(function*() {
              const { rows } = yield* fetch(account)
              return yield* insert(yield* summarize(rows))
            })
        })
        const engineOn = (filename: string) =>
          Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename })))
        const written = freshFile()
        yield* Effect.exit(Engine.run(pipeline, "acme")).pipe(Effect.provide(engineOn(written)))
        expect(bodies).toEqual({ fetch: 1, summarize: 1, insert: 1 })

        // The same rows in a store of schema 2, whose events have no step columns; and a damaged completion.
        const filename = freshFile()
        fs.mkdirSync(path.dirname(filename), { recursive: true, mode: 0o700 })
        const firstTwo = ["0001_create_runs_and_events", "0002_events_clustered_by_run"]
        yield* Migrator.make({})({
          loader: Migrator.fromRecord(Object.fromEntries(firstTwo.map((id) => [id, SqliteStore.migrations[id]!]))),
          table: "ledgerflow_migrations"
        }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.scoped)
        const db = new Database(filename)
        db.prepare("ATTACH DATABASE ? AS written").run(written)
        db.exec(`INSERT INTO runs SELECT run_id, pipeline, version, key, status, created_at, updated_at, owner,
            lease_token, lease_expires_at, failure_class, failure_fingerprint, failure_reason, parent_run_id,
            correlation_id FROM written.runs;
          INSERT INTO runs SELECT 'run-damaged', pipeline, version, 'damaged', status, created_at, updated_at, owner,
            lease_token, lease_expires_at, failure_class, failure_fingerprint, failure_reason, parent_run_id,
            correlation_id FROM written.runs;
          INSERT INTO events (run_id, seq, type, v, at, data) SELECT run_id, seq, type, v, at, data FROM written.events;
          INSERT INTO events (run_id, seq, type, v, at, data)
            SELECT 'run-damaged', seq, type, v, at, substr(data, 1, 30) FROM written.events`)
        db.close()
        /** A run's event rows with their step columns, read with a raw connection. */
        const rowsOf = (runId: string) => {
          const raw = new Database(filename, { readonly: true })
          try {
            return raw.prepare<[string], { type: string; data: string; step_id: string | null }>(
              `SELECT type, data, step_id, step_name, input_hash, attempt, started_at FROM events WHERE run_id = ? ORDER BY seq`
            ).all(runId)
          } finally {
            raw.close()
          }
        }

        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          expect(yield* sql`SELECT value FROM ledgerflow_meta WHERE key = 'schema_version'`).toEqual([
            { value: String(SqliteStore.schemaVersion) }
          ])
          const run = (yield* Engine.runs()).find((r) => r.runId !== "run-damaged")
          const migrated = rowsOf(run!.runId)
          // fetch's completion got its columns from its body; summarize's (with usage) and other events none.
          const completions = migrated.filter((e) => e.type === "StepCompleted")
          expect(completions).toHaveLength(2)
          const body = JSON.parse(completions[0]!.data)
          expect(completions[0]).toEqual({
            type: "StepCompleted",
            data: completions[0]!.data,
            step_id: "fetch#0",
            step_name: "fetch",
            input_hash: body.inputHash,
            attempt: 1,
            started_at: body.startedAt
          })
          expect(migrated.filter((e) => e.step_id !== null)).toHaveLength(1)
          // A damaged body does not stop the migration; its row keeps no columns.
          expect(rowsOf("run-damaged").filter((e) => e.step_id !== null)).toEqual([])

          // The store hands the columns back with the event, and the fold takes fetch's completion from them
          // (summarize's, with usage, from its body): the same state as the fold of the decoded events.
          expect((yield* EventStore.EventStore.pipe(Effect.flatMap((store) => store.readEvents(run!.runId))))
            .flatMap((e) => e.step === undefined ? [] : [e.step.stepId])).toEqual(["fetch#0"])
          const state = yield* Engine.state(run!.runId)
          expect(state.steps.get("fetch#0")?.completed?.output._tag).toBe("Stored")
          const decoded = Journal.fold(yield* Engine.events(run!.runId))
          // The fold read fetch's completion without its body: served, it is read from the run's bodies.
          expect(Journal.needsBodies(state)).toBe(true)
          const stored = yield* EventStore.EventStore.pipe(Effect.flatMap((store) => store.readBodies(run!.runId)))
          const steps = (s: Journal.RunState) =>
            [...s.steps.values()].map((e) => ({
              ...e,
              completed: e.completed && { ...e.completed, output: Journal.readOutput(e.completed.output, stored) }
            }))
          expect(steps(state)).toEqual(steps(decoded))
          expect(state.steps.get("summarize#0")?.usage).toHaveLength(1)
          // The resume serves both completions and runs only the step that failed.
          insertFails = false
          expect(yield* Engine.resume(pipeline, run!.runId)).toBe(7)
          expect(bodies).toEqual({ fetch: 1, summarize: 1, insert: 2 })
          const served = (yield* Engine.events(run!.runId)).flatMap((e) => e._tag === "StepsServed" ? e.stepIds : [])
          expect(served).toEqual(["fetch#0", "summarize#0"])
          // The damaged run is still reported, as before the migration, when its log is read.
          expect((yield* Effect.flip(Engine.state("run-damaged")))._tag).toBe("UnknownEvent")
        }).pipe(Effect.provide(Layer.merge(engineOn(filename), SqliteClient.layer({ filename }))))
      }).pipe(Effect.scoped)
  )

  it.effect("closing the layer closes both of its connections", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* Effect.scoped(Effect.flatMap(open({ filename }), ({ store }) => store.claim(claim("run-1", "key-1"))))
      // The last connection to close checkpoints the WAL and deletes it.
      expect(fs.existsSync(`${filename}-wal`)).toBe(false)
    }))

  it.effect("a store written by a newer ledgerflow is refused with StoreTooNew and left untouched", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* Effect.scoped(open({ filename }))
      const db = new Database(filename)
      db.prepare("UPDATE ledgerflow_meta SET value = ? WHERE key = 'schema_version'").run(
        String(SqliteStore.schemaVersion + 1)
      )
      db.close()
      const before = digest(filename)
      const error = yield* Effect.flip(Effect.scoped(open({ filename })))
      expect(error).toMatchObject({
        _tag: "StoreTooNew",
        filename,
        storeVersion: SqliteStore.schemaVersion + 1,
        supportedVersion: SqliteStore.schemaVersion
      })
      expect(error.message).toContain(`written by a newer ledgerflow (schema ${SqliteStore.schemaVersion + 1}`)
      expect(error.message).toContain("upgrade ledgerflow")
      expect(digest(filename)).toBe(before)
    }))

  it.effect("a file that is not a SQLite database is refused with NotALedgerflowStore and left untouched", () =>
    Effect.gen(function*() {
      const filename = path.join(root, `${randomUUID()}.db`)
      fs.writeFileSync(filename, "these are my notes, not a database\n".repeat(200))
      const before = digest(filename)
      const error = yield* Effect.flip(Effect.scoped(open({ filename })))
      expect(error._tag).toBe("NotALedgerflowStore")
      expect(error.message).toContain(`${filename} is not a ledgerflow store`)
      // What to do, in the library's terms: the CLI adds its flag (--db) where it prints the error.
      expect(error.message).toContain("use a new path or the right file")
      expect(error.message).not.toContain("--db")
      expect(digest(filename)).toBe(before)
      expect(fs.existsSync(`${filename}-wal`)).toBe(false)
    }))

  it.effect("another application's SQLite database is refused with NotALedgerflowStore and left untouched", () =>
    Effect.gen(function*() {
      const filename = path.join(root, `${randomUUID()}.db`)
      const db = new Database(filename)
      db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
      db.prepare("INSERT INTO customers (name) VALUES (?)").run("Ada")
      db.close()
      const before = digest(filename)
      const error = yield* Effect.flip(Effect.scoped(open({ filename })))
      expect(error._tag).toBe("NotALedgerflowStore")
      expect(error.message).toContain("customers")
      expect(digest(filename)).toBe(before)
      expect(fs.existsSync(`${filename}-wal`)).toBe(false)
    }))

  it.scoped("an empty file becomes a new store", () =>
    Effect.gen(function*() {
      const filename = path.join(root, `${randomUUID()}.db`)
      fs.writeFileSync(filename, "")
      const { store } = yield* open({ filename })
      expect((yield* store.claim(claim("run-1", "key-1")))._tag).toBe("Created")
    }))

  it("a directory it cannot write is refused with a StoreError naming it, and nothing is written", async () => {
    const directory = path.join(root, randomUUID())
    fs.mkdirSync(directory, { mode: 0o755 })
    fs.chmodSync(directory, 0o555)
    const filename = path.join(directory, ".ledgerflow", "ledger.db")
    const child = process.getuid?.() === 0 ? asRootWithoutDac("openStore.ts", [filename]) : node("openStore.ts", [filename])
    child.stdin.end()
    const outcome = JSON.parse(await linesOf(child).next())
    expect(outcome).toMatchObject({ ok: false, tag: "StoreError" })
    expect(outcome.message).toContain(directory)
    expect(outcome.message).toContain("not writable")
    // What to do, in the library's terms: the CLI adds its flag (--db) where it prints the error.
    expect(outcome.message).toContain("use a path in a writable directory")
    expect(outcome.message).not.toContain("--db")
    expect(fs.readdirSync(directory)).toEqual([])
  })

  it.scoped("a write blocked by another process beyond the busy timeout fails with a StoreError saying so", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const { store } = yield* open({ filename, busyTimeout: "100 millis" })
      const other = new Database(filename)
      yield* Effect.addFinalizer(() => Effect.sync(() => other.close()))
      other.prepare("BEGIN IMMEDIATE").run()
      const error = yield* Effect.flip(store.claim(claim("run-1", "key-1")))
      expect(error._tag).toBe("StoreError")
      expect(error.message).toContain("locked by another process")
      other.prepare("ROLLBACK").run()
      expect((yield* store.claim(claim("run-1", "key-1")))._tag).toBe("Created")
    }))

  it.scoped("a write that fails inside a batch is rolled back alone; the writes beside it commit, once", () =>
    Effect.gen(function*() {
      const { store } = yield* open({ filename: freshFile() })
      yield* store.claim(claim("run-1", "key-1"))
      const append = (now: number) =>
        Effect.either(store.append({ runId: "run-1", token: 1, events: claim("run-1", "key-1").events, now }))
      const [before, duplicate, after] = yield* Effect.all(
        [
          // Written in the batch's first try, which the failure below rolls back: it must land exactly once.
          append(2_000),
          // Another key with an id that is taken: the driver refuses it in the middle of the batch.
          Effect.either(store.claim(claim("run-1", "key-2"))),
          append(3_000)
        ],
        { concurrency: "unbounded" }
      )
      expect(duplicate._tag === "Left" && duplicate.left._tag).toBe("StoreError")
      expect(before).toMatchObject({ _tag: "Right", right: 2 })
      expect(after).toMatchObject({ _tag: "Right", right: 3 })
      expect(yield* store.findByKey("reports", "key-2")).toEqual(Option.none())
      expect((yield* store.readEvents("run-1")).map((e) => e.seq)).toEqual([1, 2, 3])
    }))

  it.scoped("a write interrupted before its batch commits is not written", () =>
    Effect.gen(function*() {
      const { store } = yield* open({ filename: freshFile() })
      yield* store.claim(claim("run-1", "key-1"))
      const fiber = yield* Effect.fork(
        store.append({ runId: "run-1", token: 1, events: claim("run-1", "key-1").events, now: 2_000 })
      )
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      yield* store.renew({ runId: "run-1", token: 1, leaseExpiresAt: 40_000, now: 2_001 })
      expect(yield* store.readEvents("run-1")).toHaveLength(1)
    }))

  it("processes opening a new store at the same moment all get it, migrated once", async () => {
    const filename = freshFile()
    const children = Array.from({ length: 3 }, () => node("openStore.ts", [filename]))
    for (const child of children) child.stdin.end()
    const outcomes = await Promise.all(children.map(async (child) => JSON.parse(await linesOf(child).next())))
    expect(outcomes).toEqual(children.map(() => ({ ok: true })))
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const { sql } = yield* open({ filename })
      expect(yield* sql`SELECT count(*) AS n FROM ledgerflow_migrations`).toEqual([
        { n: Object.keys(SqliteStore.migrations).length }
      ])
    })))
  })

  it("two processes claiming one key at the same moment: exactly one Created, in each of 50 rounds", async () => {
    const filename = freshFile()
    // Create and migrate the store first, so that both contenders open a ready store.
    await Effect.runPromise(Effect.scoped(open({ filename })))
    const children = ["worker-a", "worker-b"].map((worker) => node("claimRace.ts", [filename, worker]))
    const outputs = children.map(linesOf)
    try {
      for (const output of outputs) expect(await output.next()).toBe("ready")
      for (let round = 0; round < 50; round++) {
        const key = `key-${round}-${randomUUID()}`
        for (const child of children) child.stdin.write(`${key}\n`)
        const results = await Promise.all(outputs.map(async (output) => JSON.parse(await output.next())))
        expect(results.map((r) => r.key)).toEqual([key, key])
        expect(results.filter((r) => r.tag === "Created")).toHaveLength(1)
        expect(results[0].runId).toBe(results[1].runId)
      }
    } finally {
      for (const child of children) child.stdin.end()
    }
    await Promise.all(children.map((child) => new Promise((resolve) => child.once("exit", resolve))))
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const { store } = yield* open({ filename })
      const runs = yield* store.listRuns({ pipeline: "race" })
      expect(runs).toHaveLength(50)
      for (const run of runs) expect(yield* store.readEvents(run.runId)).toHaveLength(1)
    })))
  })
})
