/**
 * The ceiling: raw better-sqlite3 on a store file (ledgerflow's schema, WAL, synchronous=FULL), one native
 * transaction per step holding two prepared statements — the run projection update (its `updated_at`,
 * under the run's token) and the event insert, as DESIGN's measurements define an append. Nothing durable
 * appends a step that way faster on this disk.
 */
import { Event } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { freshFile, type Sample, startTimer, stepOutput, warmRuns, workload } from "./support.js"

export type Synchronous = "full" | "normal"

/** A new store file with ledgerflow's schema, migrated by the store itself, then closed. */
export const migratedFile = async (label: string): Promise<string> => {
  const filename = freshFile(label)
  await Effect.runPromise(Effect.scoped(Layer.build(SqliteStore.layer({ filename }))))
  return filename
}

/** One step's event, encoded as the engine writes it, so the row has the same size. */
export const stepEvent = (run: number, step: number): Event.NewEvent =>
  Event.encode(
    new Event.StepCompleted({
      at: Date.now(),
      stepId: `step-${step}#0`,
      name: `step-${step}`,
      inputHash: "0123456789abcdef0123456789abcdef",
      attempt: 1,
      startedAt: Date.now(),
      output: stepOutput(run, step)
    })
  )

export const measure = async (options: { readonly runs: number; readonly synchronous: Synchronous }): Promise<Sample> => {
  const filename = await migratedFile("ceiling")
  const db = new Database(filename)
  try {
    db.pragma("journal_mode = WAL")
    db.pragma(`synchronous = ${options.synchronous.toUpperCase()}`)
    const insertRun = db.prepare(
      `INSERT INTO runs (run_id, pipeline, version, key, status, created_at, updated_at, owner,
         lease_token, lease_expires_at) VALUES (?, 'bench', '1', ?, 'running', ?, ?, 'bench', 1, ?)`
    )
    const updateRun = db.prepare<[number, string]>("UPDATE runs SET updated_at = ? WHERE run_id = ? AND lease_token = 1")
    const insertEvent = db.prepare("INSERT INTO events (run_id, seq, type, v, at, data) VALUES (?, ?, ?, ?, ?, ?)")
    const append = db.transaction((runId: string, seq: number, event: Event.NewEvent) => {
      if (updateRun.run(event.at, runId).changes !== 1) throw new Error(`run ${runId} is not held`)
      insertEvent.run(runId, seq, event.type, event.v, event.at, event.data)
    })
    // The runs exist before the clock starts: the ceiling is the per-step append alone. The first
    // `warmRuns` are appended untimed, as every row warms its own file.
    const total = warmRuns + options.runs
    const t = Date.now()
    db.transaction(() => {
      for (let run = 0; run < total; run++) insertRun.run(`run-${run}`, `key-${run}`, t, t, t + 60_000)
    })()
    const events = Array.from({ length: total }, (_, run) =>
      Array.from({ length: workload.steps }, (_, step) => stepEvent(run, step)))
    const appendRun = (run: number) => events[run]!.forEach((event, i) => append(`run-${run}`, i + 1, event))
    for (let run = 0; run < warmRuns; run++) appendRun(run)
    const stop = startTimer()
    for (let run = warmRuns; run < total; run++) appendRun(run)
    return stop(options.runs * workload.steps)
  } finally {
    db.close()
  }
}
