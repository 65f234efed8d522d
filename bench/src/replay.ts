/**
 * Replay: how fast a 100k-event log is read back and folded. The log is 100 runs of a 1000-step pipeline:
 * one run made by the engine, then copied under 99 new run ids. Reported against bare row iteration.
 */
import { Engine, type Event, EventStore, Pipeline, Step } from "@ledgerflow/core"
import Database from "better-sqlite3"
import { Effect, Schema } from "effect"
import * as Ledgerflow from "./ledgerflow.js"
import { freshFile, type Sample, startTimer } from "./support.js"

const stepsPerRun = 1000
const copies = 99

const item = Step.make({
  name: "item",
  input: Schema.Struct({ i: Schema.Number }),
  output: Schema.Struct({ i: Schema.Number, ok: Schema.Boolean, note: Schema.String }),
  run: ({ i }) => Effect.succeed({ i, ok: true, note: "done" })
})

/** A long run: 1000 calls of one step (`item#0`..`item#999`). */
const long = Pipeline.make({
  name: "long",
  version: 1,
  input: Schema.Struct({ n: Schema.Number }),
  output: Schema.Number,
  breaker: false,
  run: ({ n }) =>
    Effect.gen(function*() {
      let sum = 0
      for (let i = 0; i < n; i++) sum += (yield* item({ i })).i
      return sum
    })
})

export interface ReplayResult {
  readonly events: number
  readonly runs: number
  /** Raw better-sqlite3 `.all()` of each run's rows, fields touched: the reference (ratio 1). */
  readonly bare: ReadonlyArray<Sample>
  /** The same plus `JSON.parse` of every event body. */
  readonly jsonParse: ReadonlyArray<Sample>
  /** `Engine.state`: read, decode for the fold, `Journal.fold`, run by run (what a resume or replay reads). */
  readonly readDecodeFold: ReadonlyArray<Sample>
  /** `Engine.replay` of 10 whole runs: read, decode, fold, and re-execute the pipeline against the log. */
  readonly engineReplay: ReadonlyArray<Sample>
}

/** Copy a run's row and events (every column) under new ids, in one transaction on a raw connection. */
const copyRun = (filename: string, source: string, count: number): Array<string> => {
  const db = new Database(filename)
  try {
    const runColumns = db.prepare<[], string>("SELECT name FROM pragma_table_info('runs')").pluck().all()
      .filter((c) => c !== "run_id" && c !== "key")
    const copyRow = db.prepare(
      `INSERT INTO runs (run_id, key, ${runColumns.join(", ")})
       SELECT @id, @id, ${runColumns.join(", ")} FROM runs WHERE run_id = @source`
    )
    const eventColumns = db.prepare<[], string>("SELECT name FROM pragma_table_info('events')").pluck().all()
      .filter((c) => c !== "run_id")
    const copyEvents = db.prepare(
      `INSERT INTO events (run_id, ${eventColumns.join(", ")})
       SELECT @id, ${eventColumns.join(", ")} FROM events WHERE run_id = @source`
    )
    const ids = Array.from({ length: count }, (_, i) => `${source}-copy-${i}`)
    db.transaction(() => {
      for (const id of ids) {
        copyRow.run({ id, source })
        copyEvents.run({ id, source })
      }
    })()
    return [source, ...ids]
  } finally {
    db.close()
  }
}

/** Read every run's rows with a raw statement; `parse` also parses each body. */
const bareRead = (filename: string, runIds: ReadonlyArray<string>, parse: boolean): Sample => {
  const db = new Database(filename, { readonly: true })
  try {
    const select = db.prepare<[string], Event.StoredEvent>(
      "SELECT run_id AS runId, seq, type, v, at, data FROM events WHERE run_id = ? AND seq >= 1 ORDER BY seq"
    )
    let events = 0
    let checksum = 0
    const stop = startTimer()
    for (const runId of runIds) {
      for (const row of select.all(runId)) {
        events++
        checksum += row.seq + row.data.length + (parse && JSON.parse(row.data) !== null ? 1 : 0)
      }
    }
    const sample = stop(events)
    if (checksum === 0) throw new Error("nothing read")
    return sample
  } finally {
    db.close()
  }
}

export const measure = (options: { readonly repetitions: number }): Promise<ReplayResult> => {
  const filename = freshFile("replay")
  return Effect.runPromise(
    Effect.gen(function*() {
      yield* Engine.run(long, { n: stepsPerRun })
      const [source] = yield* Engine.runs({ pipeline: "long" })
      const runIds = copyRun(filename, source!.runId, copies)
      const store = yield* EventStore.EventStore
      const eventsPerRun = (yield* store.readEvents(source!.runId)).length

      const readDecodeFold = Effect.gen(function*() {
        const stop = startTimer()
        let events = 0
        for (const runId of runIds) {
          events += (yield* Engine.state(runId)).events
        }
        return stop(events)
      })
      const engineReplay = Effect.gen(function*() {
        const stop = startTimer()
        let events = 0
        for (const runId of runIds.slice(0, 10)) {
          const report = yield* Engine.replay(long, runId)
          if (report.outcome !== "identical") throw new Error(`replay of ${runId} was ${report.outcome}`)
          events += eventsPerRun
        }
        return stop(events)
      })

      const times = (n: number) => Array.from({ length: n }, (_, i) => i)
      yield* readDecodeFold // warm-up
      const bare = times(options.repetitions).map(() => bareRead(filename, runIds, false))
      const jsonParse = times(options.repetitions).map(() => bareRead(filename, runIds, true))
      const folded = yield* Effect.forEach(times(options.repetitions), () => readDecodeFold)
      const replayed = yield* Effect.forEach(times(options.repetitions), () => engineReplay)
      return {
        events: bare[0]!.items,
        runs: runIds.length,
        bare,
        jsonParse,
        readDecodeFold: folded,
        engineReplay: replayed
      } satisfies ReplayResult
    }).pipe(Effect.provide(Ledgerflow.layer(filename, "normal")))
  )
}
