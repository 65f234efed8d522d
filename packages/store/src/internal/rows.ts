/**
 * Store rows decoded at the boundary: a `runs` row becomes a `RunRecord` (absent optional columns become
 * `undefined` fields), an `events` row a `StoredEvent` (with its step columns when it has them).
 */
import { type Event, EventStore } from "@ledgerflow/core"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

const optional = Schema.NullOr(Schema.String)

export const RunRow = Schema.Struct({
  run_id: Schema.String,
  pipeline: Schema.String,
  version: Schema.String,
  key: Schema.String,
  status: EventStore.RunStatus,
  created_at: Schema.Number,
  updated_at: Schema.Number,
  last_seq: Schema.Number,
  owner: Schema.String,
  lease_token: Schema.Number,
  lease_expires_at: Schema.Number,
  failure_class: optional,
  failure_fingerprint: optional,
  failure_reason: optional,
  parent_run_id: optional,
  correlation_id: optional,
  deliveries: Schema.Number,
  last_delivered_at: Schema.Number
})

const decodeRunRow = Schema.decodeUnknownEither(RunRow)

/**
 * The columns of `runs`, in the order `RunRow` lists them. A run's last seq is not kept in its row: it is
 * the max seq of its events, one seek at the end of its range of the events' primary key.
 */
export const lastSeqOf = (runIdColumn: string) =>
  `(SELECT coalesce(max(seq), 0) FROM events WHERE events.run_id = ${runIdColumn})`

export const runColumns = Object.keys(RunRow.fields)
  .map((column) => column === "last_seq" ? `${lastSeqOf("runs.run_id")} AS last_seq` : column)
  .join(", ")

export const toRunRecord = (row: typeof RunRow.Type): EventStore.RunRecord => ({
  runId: row.run_id,
  pipeline: row.pipeline,
  version: row.version,
  key: row.key,
  status: row.status,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  lastSeq: row.last_seq,
  owner: row.owner,
  leaseToken: row.lease_token,
  leaseExpiresAt: row.lease_expires_at,
  failureClass: row.failure_class ?? undefined,
  failureFingerprint: row.failure_fingerprint ?? undefined,
  failureReason: row.failure_reason ?? undefined,
  parentRunId: row.parent_run_id ?? undefined,
  correlationId: row.correlation_id ?? undefined,
  deliveries: row.deliveries,
  lastDeliveredAt: row.last_delivered_at
})

/** A damaged row (a status this code does not know, a missing column) is an error naming what is wrong. */
export class DamagedRow extends Error {
  override readonly name = "DamagedRow"
}

const statuses: ReadonlySet<unknown> = new Set(EventStore.RunStatus.literals)
const isText = (u: unknown): u is string => typeof u === "string"
const isNumber = (u: unknown): u is number => typeof u === "number"
const isOptionalText = (u: unknown): u is string | null => u === null || typeof u === "string"

/** A row whose every column has its type, checked without the Schema interpreter (runs are listed often). */
const isRunRow = (row: unknown): row is typeof RunRow.Type =>
  Predicate.isRecord(row) && isText(row["run_id"]) && isText(row["pipeline"]) && isText(row["version"]) &&
  isText(row["key"]) && statuses.has(row["status"]) && isNumber(row["created_at"]) && isNumber(row["updated_at"]) &&
  isNumber(row["last_seq"]) && isText(row["owner"]) && isNumber(row["lease_token"]) &&
  isNumber(row["lease_expires_at"]) && isOptionalText(row["failure_class"]) &&
  isOptionalText(row["failure_fingerprint"]) && isOptionalText(row["failure_reason"]) &&
  isOptionalText(row["parent_run_id"]) && isOptionalText(row["correlation_id"]) && isNumber(row["deliveries"]) &&
  isNumber(row["last_delivered_at"])

/** Decode a `runs` row: a well-formed row directly, anything else through the Schema, which words the error. */
export const decodeRun = (row: unknown): EventStore.RunRecord =>
  isRunRow(row) ? toRunRecord(row) : Either.match(decodeRunRow(row), {
    onLeft: (error) => {
      throw new DamagedRow(`a row of the runs table does not decode: ${ParseResult.TreeFormatter.formatErrorSync(error)}`)
    },
    onRight: toRunRecord
  })

/**
 * The columns of an `events` row as `eventColumns` (or `foldColumns`) selects them, as an array: a run's log
 * is read whole on every resume and replay, and better-sqlite3 builds an array per row about twice as fast
 * as an object with these ten keys (measured on the replay bench's log). `Data` is null where a fold left
 * the body out.
 */
export type EventRow<Data = string> = readonly [
  seq: number,
  type: string,
  v: number,
  at: number,
  data: Data,
  stepId: string | null,
  stepName: string | null,
  inputHash: string | null,
  attempt: number | null,
  startedAt: number | null
]

/** A completion's step columns (`Event.StepColumns`), in `EventRow` order. */
const stepColumns = "step_id, step_name, input_hash, attempt, started_at"

/** `run_id` is not selected: it is the read's parameter. */
export const eventColumns = `seq, type, v, at, data, ${stepColumns}`

/** A row's step columns are all set, with their types: the fold reads such a completion from them. */
const hasStepColumns = `typeof(step_id) = 'text' AND typeof(step_name) = 'text' AND typeof(input_hash) = 'text'
  AND typeof(attempt) IN ('integer', 'real') AND typeof(started_at) IN ('integer', 'real')`

/**
 * `eventColumns` for a fold (`readFold`): the body of a completion with its step columns is left out (NULL;
 * the column itself is NOT NULL). Not materializing a thousand bodies a run is most of what folding a long
 * log saves (measured: Engine.state of the replay bench's log ~145–205k → ~225–240k events/s).
 */
export const foldColumns = `seq, type, v, at, CASE WHEN ${hasStepColumns} THEN NULL ELSE data END, ${stepColumns}`

/**
 * An `events` row as a `StoredEvent`. Step columns of other types than the schema's (a row edited by hand)
 * are ignored: the event is then folded from its body, which is decoded and checked.
 */
export const toStoredEvent = (runId: string, row: EventRow): Event.StoredEvent => {
  const [seq, type, v, at, data, stepId, name, inputHash, attempt, startedAt] = row
  return typeof stepId === "string" && typeof name === "string" && typeof inputHash === "string" &&
      typeof attempt === "number" && typeof startedAt === "number"
    ? { runId, seq, type, v, at, data, step: { stepId, name, inputHash, attempt, startedAt } }
    : { runId, seq, type, v, at, data }
}

/** A row selected with `foldColumns`: a `StoredEvent`, or a completion without its body. */
export const toFoldRow = (runId: string, row: EventRow<string | null>): Event.FoldRow => {
  if (row[4] !== null) return toStoredEvent(runId, row as EventRow)
  // The body was left out because the query found every step column set and of its type.
  const [seq, type, v, at, , stepId, name, inputHash, attempt, startedAt] = row
  return { runId, seq, type, v, at, step: { stepId: stepId!, name: name!, inputHash: inputHash!, attempt: attempt!, startedAt: startedAt! } }
}
