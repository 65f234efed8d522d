/**
 * A run as the commands present it: the `<run>` argument (an id or a unique prefix, like git), its label
 * and status for tables, and its JSON form.
 */
import { Args } from "@effect/cli"
import type { Event, EventStore } from "@ledgerflow/core"
import type { Cell, Style } from "./render.js"

export const argument = Args.text({ name: "run" }).pipe(
  Args.withDescription("A run id, or any prefix of one that no other run shares (like git).")
)

/** `pipeline@version`. */
export const label = (run: EventStore.RunRecord): string => `${run.pipeline}@${run.version}`

export const statusCell = (status: string, style: Style): Cell => ({
  text: status,
  paint: status === "completed"
    ? style.green
    : status === "failed" || status === "needs_attention"
    ? style.red
    : status === "running"
    ? style.cyan
    : style.yellow
})

/** The status, with the failure's classification when there is one: `failed (deterministic)`. */
export const statusText = (run: EventStore.RunRecord): string =>
  run.failureClass !== undefined && run.status !== "completed" && run.status !== "running"
    ? `${run.status} (${run.failureClass})`
    : run.status

/** The run projection as JSON: every field, absent ones as null, times in epoch ms. */
export const toJson = (run: EventStore.RunRecord) => ({
  runId: run.runId,
  pipeline: run.pipeline,
  version: run.version,
  key: run.key,
  status: run.status,
  createdAt: run.createdAt,
  updatedAt: run.updatedAt,
  lastSeq: run.lastSeq,
  owner: run.owner,
  leaseToken: run.leaseToken,
  leaseExpiresAt: run.leaseExpiresAt,
  failureClass: run.failureClass ?? null,
  failureFingerprint: run.failureFingerprint ?? null,
  failureReason: run.failureReason ?? null,
  parentRunId: run.parentRunId ?? null,
  correlationId: run.correlationId ?? null,
  deliveries: run.deliveries,
  lastDeliveredAt: run.lastDeliveredAt
})

/**
 * How many times the run's pipeline code was executed: its start and every resume (a takeover, a resume
 * after a fix), not the leases a rollback took. The rest of its deliveries executed nothing.
 */
export const executions = (events: ReadonlyArray<Event.Event>): number =>
  events.filter((e) => e._tag === "RunStarted" || (e._tag === "RunResumed" && e.reason !== "rollback")).length

/** "21 deliveries, 1 execution". */
export const deliveriesText = (deliveries: number, executions: number): string =>
  `${deliveries} deliver${deliveries === 1 ? "y" : "ies"}, ${executions} execution${executions === 1 ? "" : "s"}`
