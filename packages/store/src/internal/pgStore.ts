/**
 * The `EventStoreService` over Postgres. Writes (claim, acquire, append, renew, counters, settings) go
 * through the group-committing writer, each one statement that checks and writes together: a claim is an
 * `INSERT … ON CONFLICT DO NOTHING` with the run's first events, an append an `UPDATE` of the run's row
 * guarded by its fencing token (and expected seq) whose returned seq numbers the events inserted by the
 * same statement. Reads go through `@effect/sql-pg`. Semantics follow the in-memory reference store.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { type Event, type EventStore, StoreError } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type pg from "pg"
import { acquireRefused, createdRun, runFilterWhere } from "./outcomes.js"
import { storeError } from "./pgErrors.js"
import { channel, type Listener, payload } from "./pgListener.js"
import type { Writer } from "./pgWriter.js"
import { DamagedRow, decodeRun, type EventRow, RunRow, toFoldRow, toStoredEvent } from "./rows.js"

export interface StoreContext {
  readonly sql: SqlClient.SqlClient
  readonly writer: Writer
  /** The Postgres schema holding the store's tables (a checked identifier). */
  readonly schema: string
  /** The store's URL without its password, for messages. */
  readonly where: string
  /** Who waits for a run here (`awaitRunChange`), woken by `listener`. */
  readonly waiters: EventStore.RunWaiters
  readonly listener: Listener
}

const runColumns = Object.keys(RunRow.fields).join(", ")
const stepColumns = "step_id, step_name, input_hash, attempt, started_at"
const eventColumns = `seq, type, v, at, data, ${stepColumns}`
/** A completion kept with its step columns comes without its body (see `EventStore.readFold`). */
const foldColumns = `seq, type, v, at, CASE WHEN step_id IS NOT NULL AND step_name IS NOT NULL AND input_hash IS NOT NULL
  AND attempt IS NOT NULL AND started_at IS NOT NULL THEN NULL ELSE data END, ${stepColumns}`

/** The events of one write as arrays, one per column, for `unnest`: one statement inserts them all. */
const eventParams = (events: ReadonlyArray<Event.NewEvent>) => [
  events.map((e) => e.type),
  events.map((e) => e.v),
  events.map((e) => e.at),
  events.map((e) => e.data),
  events.map((e) => e.step?.stepId ?? null),
  events.map((e) => e.step?.name ?? null),
  events.map((e) => e.step?.inputHash ?? null),
  events.map((e) => e.step?.attempt ?? null),
  events.map((e) => e.step?.startedAt ?? null)
]

/** Inserts a write's events numbered from `{base} + 1`, `{source}` being the CTE that proved the write allowed. */
const insertEvents = (schema: string, source: string, runId: string, base: string, first: number) =>
  `INSERT INTO ${schema}.events (run_id, seq, type, v, at, data, ${stepColumns})
   SELECT ${runId}, ${base} + e.ord, e.type, e.v, e.at, e.data, e.step_id, e.step_name, e.input_hash, e.attempt, e.started_at
   FROM ${source}, unnest($${first}::text[], $${first + 1}::int[], $${first + 2}::bigint[], $${first + 3}::text[],
     $${first + 4}::text[], $${first + 5}::text[], $${first + 6}::text[], $${first + 7}::bigint[], $${first + 8}::bigint[])
     WITH ORDINALITY AS e(type, v, at, data, step_id, step_name, input_hash, attempt, started_at, ord)`

/** The projection columns an append or acquire sets; `$n`… are its parameters (see `patchParams`). */
const patchSql = (n: number) =>
  `status = coalesce($${n}::text, status),
   failure_class = CASE WHEN $${n + 1}::boolean THEN $${n + 2}::text ELSE failure_class END,
   failure_fingerprint = CASE WHEN $${n + 1}::boolean THEN $${n + 3}::text ELSE failure_fingerprint END,
   failure_reason = CASE WHEN $${n + 1}::boolean THEN $${n + 4}::text ELSE failure_reason END`

const patchParams = (patch: EventStore.RunPatch | undefined) => {
  const failure = patch?.failure
  return [
    patch?.status ?? null,
    failure !== undefined,
    failure?.failureClass ?? null,
    failure?.failureFingerprint ?? null,
    failure?.failureReason ?? null
  ]
}

/** A row of `eventColumns`/`foldColumns` read as values, checked (a damaged row names itself). */
const eventRow = (runId: string, values: ReadonlyArray<unknown>): EventRow<string | null> => {
  const [seq, type, v, at, data, stepId, name, inputHash, attempt, startedAt] = values
  const text = (u: unknown) => (typeof u === "string" ? u : null)
  const num = (u: unknown) => (typeof u === "number" ? u : null)
  if (typeof seq !== "number" || typeof type !== "string" || typeof v !== "number" || typeof at !== "number") {
    throw new DamagedRow(`an event of run ${runId} does not decode: ${JSON.stringify(values.slice(0, 4))}`)
  }
  return [seq, type, v, at, text(data), text(stepId), text(name), text(inputHash), num(attempt), num(startedAt)]
}

const withBody = (runId: string, row: EventRow<string | null>): EventRow => {
  const [seq, type, v, at, data, ...step] = row
  if (data === null) throw new DamagedRow(`event ${seq} of run ${runId} has no body`)
  return [seq, type, v, at, data, ...step]
}

/** A LIKE pattern matching strings that start with `prefix` literally. */
const likePrefix = (prefix: string) => prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + "%"

export const make = ({ listener, schema, sql, waiters, where, writer }: StoreContext): EventStore.EventStoreService => {
  const fail = (operation: string) => (cause: unknown) => storeError(operation, where, cause)

  const query = <A>(operation: string, text: string, params: ReadonlyArray<unknown>, f: (rows: ReadonlyArray<unknown>) => A) =>
    sql.unsafe(text, params).pipe(
      Effect.mapError(fail(operation)),
      Effect.flatMap((rows) => Effect.try({ try: () => f(rows), catch: fail(operation) }))
    )

  const values = <A>(operation: string, text: string, params: ReadonlyArray<unknown>, f: (rows: ReadonlyArray<ReadonlyArray<unknown>>) => A) =>
    sql.unsafe(text, params).values.pipe(
      Effect.mapError(fail(operation)),
      Effect.flatMap((rows) => Effect.try({ try: () => f(rows), catch: fail(operation) }))
    )

  const selectRun = `SELECT ${runColumns} FROM ${schema}.runs`

  const currentRun = async (client: pg.ClientBase, runId: string) => {
    const { rows } = await client.query(`${selectRun} WHERE run_id = $1`, [runId])
    return rows[0] === undefined ? undefined : decodeRun(rows[0])
  }

  const claimText = `WITH created AS (
      INSERT INTO ${schema}.runs (run_id, pipeline, version, key, status, created_at, updated_at, last_seq, owner,
        lease_token, lease_expires_at, parent_run_id, correlation_id, deliveries, last_delivered_at)
      VALUES ($1, $2, $3, $4, 'running', $5, $5, $6, $7, 1, $8, $9, $10, 1, $5)
      ON CONFLICT (pipeline, key) DO NOTHING
      RETURNING run_id
    ), inserted AS (${insertEvents(schema, "created", "created.run_id", "0", 11)})
    SELECT count(*)::int AS created FROM created`

  /** A redelivery: one more delivery counted on the run's row. */
  const countDelivery = "deliveries = deliveries + 1, last_delivered_at = greatest(last_delivered_at, $2::bigint)"

  const deliverByKey = `UPDATE ${schema}.runs SET ${countDelivery} WHERE pipeline = $1 AND key = $3 RETURNING ${runColumns}`

  // An answered redelivery's events are appended after the run's last seq, unless an owner may be
  // appending (the run is running or compensating): then the delivery is only counted.
  const busy = "status IN ('running', 'compensating')"
  const deliverText = `WITH counted AS (
      UPDATE ${schema}.runs SET ${countDelivery}, last_seq = last_seq + CASE WHEN ${busy} THEN 0 ELSE $3::int END
      WHERE run_id = $1
      RETURNING ${runColumns}, last_seq - CASE WHEN ${busy} THEN 0 ELSE $3::int END AS base
    ), inserted AS (${
    insertEvents(schema, `(SELECT * FROM counted WHERE NOT (${busy})) AS counted`, "counted.run_id", "counted.base", 4)
  })
    SELECT * FROM counted`

  const appendText = `WITH target AS (
      UPDATE ${schema}.runs SET last_seq = last_seq + $3,
        updated_at = CASE WHEN $4::boolean THEN $5::bigint ELSE updated_at END, ${patchSql(6)}
      WHERE run_id = $1 AND lease_token = $2 AND ($11::int IS NULL OR last_seq = $11::int)
      RETURNING last_seq - $3 AS base
    ), inserted AS (${insertEvents(schema, "target", "$1", "target.base", 12)})
    SELECT (SELECT base FROM target) AS base, r.lease_token AS token, r.last_seq AS last_seq,
      -- A status change wakes the run's waiters in every worker, at this transaction's commit.
      (SELECT pg_notify('${channel}', $21::text) FROM target WHERE $21::text IS NOT NULL) AS notified
    FROM (SELECT 1) AS one LEFT JOIN ${schema}.runs r ON r.run_id = $1`

  // A takeover from a dead worker skips a row another worker is taking (FOR UPDATE SKIP LOCKED): N workers
  // recovering at once split the dead runs instead of queueing on each other's locks.
  const acquireText = (skipLocked: boolean) =>
    `WITH target AS (
      UPDATE ${schema}.runs SET owner = $3, lease_token = lease_token + 1, lease_expires_at = $4, updated_at = $5,
        last_seq = last_seq + $6, ${patchSql(7)}
      WHERE run_id = (SELECT run_id FROM ${schema}.runs WHERE run_id = $1 AND lease_token = $2
        AND (NOT $12::boolean OR status <> 'running' OR lease_expires_at <= $5)
        FOR UPDATE${skipLocked ? " SKIP LOCKED" : ""})
      RETURNING ${runColumns.replace("last_seq", "last_seq - $6 AS last_seq")}
    ), inserted AS (${insertEvents(schema, "target", "target.run_id", "target.last_seq", 13)})
    SELECT * FROM target`

  const list = (operation: string, where: ReadonlyArray<[string, unknown]>, limit: number | undefined) => {
    const params = where.map(([, value]) => value)
    const clauses = where.map(([clause], i) => clause.replace("?", `$${i + 1}`))
    const bounded = limit !== undefined && limit !== Infinity
    if (bounded) params.push(Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0)
    return query(
      operation,
      `${selectRun}${clauses.length === 0 ? "" : ` WHERE ${clauses.join(" AND ")}`}
       ORDER BY created_at DESC, run_id DESC${bounded ? ` LIMIT $${params.length}` : ""}`,
      params,
      (rows) => rows.map(decodeRun)
    )
  }

  return {
    claim: (request) =>
      writer.submit(
        `key:${request.pipeline}\u0000${request.key}`,
        async (client): Promise<Exit.Exit<EventStore.ClaimResult>> => {
          const { rows } = await client.query(claimText, [
            request.runId,
            request.pipeline,
            request.version,
            request.key,
            request.now,
            request.events.length,
            request.owner,
            request.leaseExpiresAt,
            request.parentRunId ?? null,
            request.correlationId ?? null,
            ...eventParams(request.events)
          ])
          if (rows[0]?.created !== 1) {
            // The key has its run: this start is one more delivery of it, counted in the same transaction.
            const existing = await client.query(deliverByKey, [request.pipeline, request.now, request.key])
            return Exit.succeed({ _tag: "Existing", run: decodeRun(existing.rows[0]) })
          }
          return Exit.succeed({ _tag: "Created", run: createdRun(request) })
        },
        fail(`claim of ${request.pipeline} key ${request.key}`),
        // A claim can be rebuilt (claimed again): it becomes durable with the server's next flush.
        { durable: false }
      ),

    deliver: (request) =>
      writer.submit(
        `run:${request.runId}`,
        async (client): Promise<Exit.Exit<EventStore.RunRecord, StoreError.StoreError>> => {
          const answered = request.answered ?? []
          const { rows } = await client.query(deliverText, [request.runId, request.now, answered.length, ...eventParams(answered)])
          return rows[0] === undefined
            ? Exit.fail(new StoreError.StoreError({ operation: "deliver", message: `no run has the id ${request.runId}` }))
            : Exit.succeed(decodeRun(rows[0]))
        },
        fail(`delivery of run ${request.runId}`),
        // Rebuildable (a count and a note in the ledger): durable with the next durable commit.
        { durable: false }
      ),

    acquire: (request) =>
      Effect.suspend(() => {
        const events = request.events(request.expectedToken + 1) // the token a successful takeover sets
        return writer.submit(
          `run:${request.runId}`,
          async (client): Promise<Exit.Exit<EventStore.RunRecord, StoreError.LeaseLost>> => {
            const { rows } = await client.query(acquireText(request.requireExpired), [
              request.runId,
              request.expectedToken,
              request.owner,
              request.leaseExpiresAt,
              request.now,
              events.length,
              ...patchParams(request.patch),
              request.requireExpired,
              ...eventParams(events)
            ])
            if (rows[0] === undefined) {
              const run = await currentRun(client, request.runId)
              return Exit.fail(
                acquireRefused(request, run)
              )
            }
            const run = decodeRun(rows[0])
            return Exit.succeed({ ...run, lastSeq: run.lastSeq + events.length })
          },
          fail(`acquire of run ${request.runId}`)
        )
      }),

    append: (request) =>
      writer.submit(
        `run:${request.runId}`,
        async (client): Promise<Exit.Exit<number, StoreError.LeaseLost | StoreError.SeqConflict>> => {
          const { rows } = await client.query(appendText, [
            request.runId,
            request.token,
            request.events.length,
            request.patch !== undefined,
            request.now,
            ...patchParams(request.patch),
            request.expectedSeq ?? null,
            ...eventParams(request.events),
            request.patch?.status === undefined ? null : payload(schema, request.runId)
          ])
          const row = rows[0]
          if (typeof row?.base === "number") return Exit.succeed(row.base + request.events.length)
          // Refused: the run as the statement saw it says why.
          const token = typeof row?.token === "number" ? row.token : undefined
          if (token === request.token && request.expectedSeq !== undefined && row.last_seq !== request.expectedSeq) {
            return Exit.fail(
              new StoreError.SeqConflict({ runId: request.runId, expectedSeq: request.expectedSeq, actualSeq: row.last_seq })
            )
          }
          return Exit.fail(StoreError.LeaseLost.appendRefused(request.runId, request.token, token))
        },
        fail(`append to run ${request.runId}`),
        { durable: request.durable }
      ),

    renew: (request) =>
      writer.submit(
        `run:${request.runId}`,
        async (client): Promise<Exit.Exit<void, StoreError.LeaseLost>> => {
          const { rowCount } = await client.query(
            `UPDATE ${schema}.runs SET lease_expires_at = $3 WHERE run_id = $1 AND lease_token = $2`,
            [request.runId, request.token, request.leaseExpiresAt]
          )
          if (rowCount !== 1) return Exit.fail(StoreError.LeaseLost.renewalRefused(request.runId, request.token))
          // A lease renewed to now is given up (rarely: an interrupted run): its waiters may take it at once.
          if (request.leaseExpiresAt <= request.now) {
            await client.query("SELECT pg_notify($1, $2)", [channel, payload(schema, request.runId)])
          }
          return Exit.void
        },
        fail(`renewal of the lease of run ${request.runId}`),
        // A lease renewal lost with the server is moot: the lease is short either way.
        { durable: false }
      ),

    getRun: (runId) =>
      query(`read of run ${runId}`, `${selectRun} WHERE run_id = $1`, [runId], (rows) =>
        rows[0] === undefined ? Option.none() : Option.some(decodeRun(rows[0]))),

    findByKey: (pipeline, key) =>
      query(`lookup of ${pipeline} key ${key}`, `${selectRun} WHERE pipeline = $1 AND key = $2`, [pipeline, key], (rows) =>
        rows[0] === undefined ? Option.none() : Option.some(decodeRun(rows[0]))),

    incrementCounter: ({ actor, keepLast, key, now }) =>
      writer.submit(
        `counter:${key}`,
        async (client) => {
          // One statement: two processes counting the same thread at once both land.
          const { rows } = await client.query(
            `INSERT INTO ${schema}.counters AS c (key, count, actors, updated_at)
             VALUES ($1, 1, jsonb_build_array($2::text), $4)
             ON CONFLICT (key) DO UPDATE SET count = c.count + 1, updated_at = $4,
               actors = (SELECT coalesce(jsonb_agg(a.x ORDER BY a.i), '[]'::jsonb)
                 FROM jsonb_array_elements(c.actors || jsonb_build_array($2::text)) WITH ORDINALITY AS a(x, i)
                 WHERE a.i > jsonb_array_length(c.actors) + 1 - $3::int)
             RETURNING count, actors`,
            [key, actor, Math.max(1, keepLast), now]
          )
          const row = rows[0]
          const actors: unknown = row?.actors
          if (typeof row?.count !== "number" || !Array.isArray(actors) || !actors.every((a) => typeof a === "string")) {
            throw new DamagedRow(`counter ${key} does not decode`)
          }
          return Exit.succeed({ count: row.count, actors: actors.slice(-Math.max(1, keepLast)) })
        },
        fail(`increment of counter ${key}`)
      ),

    getSetting: (key) =>
      query(`read of setting ${key}`, `SELECT value FROM ${schema}.settings WHERE key = $1`, [key], (rows) => {
        const row = rows[0]
        return typeof row === "object" && row !== null && "value" in row && typeof row.value === "string"
          ? Option.some(row.value)
          : Option.none()
      }),

    putSetting: (key, value) =>
      writer.submit(
        `setting:${key}`,
        async (client) => {
          await client.query(
            `INSERT INTO ${schema}.settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
            [key, value]
          )
          return Exit.void
        },
        fail(`write of setting ${key}`)
      ),

    readEvents: (runId, fromSeq = 1) =>
      values(
        `read of the events of run ${runId}`,
        `SELECT ${eventColumns} FROM ${schema}.events WHERE run_id = $1 AND seq >= $2 ORDER BY seq`,
        [runId, fromSeq],
        (rows) => rows.map((row) => toStoredEvent(runId, withBody(runId, eventRow(runId, row))))
      ),

    readFold: (runId) =>
      values(
        `read of the events of run ${runId}`,
        `SELECT ${foldColumns} FROM ${schema}.events WHERE run_id = $1 ORDER BY seq`,
        [runId],
        (rows) => rows.map((row) => toFoldRow(runId, eventRow(runId, row)))
      ),

    readBodies: (runId) =>
      values(
        `read of the step outputs of run ${runId}`,
        `SELECT seq, data FROM ${schema}.events WHERE run_id = $1 AND step_id IS NOT NULL`,
        [runId],
        (rows) =>
          new Map(rows.map(([seq, data]) => {
            if (typeof seq !== "number" || typeof data !== "string") throw new DamagedRow(`a step output of run ${runId} does not decode`)
            return [seq, data] as const
          }))
      ),

    awaitRunChange: (runId, atMost) =>
      Effect.promise(() => listener.listening().then(() => true, () => false)).pipe(
        Effect.flatMap((listening) =>
          waiters.wait({
            runId,
            atMost,
            current: query(`read of run ${runId}`, `${selectRun} WHERE run_id = $1`, [runId], (rows) =>
              rows[0] === undefined ? undefined : decodeRun(rows[0])),
            // Not listening (no connection could be opened for it): read the run again each second instead.
            recheckEvery: listening ? undefined : "1 second"
          })
        )
      ),

    findByPrefix: (prefix, limit) =>
      list(`lookup of runs whose id starts with ${prefix}`, [["run_id LIKE ?", likePrefix(prefix)]], limit),

    listRuns: (filter) =>
      list("listing of runs", runFilterWhere(filter), filter.limit)
  }
}
