/**
 * What a store answers, built the same way by every adapter of this package: the record of a run a claim
 * created, and the refusal of an acquire that lost its compare-and-set.
 */
import { type EventStore, StoreError } from "@ledgerflow/core"

/** The run a claim has just created: its first events appended, token 1, its first delivery. */
export const createdRun = (request: EventStore.ClaimRequest): EventStore.RunRecord => ({
  runId: request.runId,
  pipeline: request.pipeline,
  version: request.version,
  key: request.key,
  status: "running",
  createdAt: request.now,
  updatedAt: request.now,
  lastSeq: request.events.length,
  owner: request.owner,
  leaseToken: 1,
  leaseExpiresAt: request.leaseExpiresAt,
  failureClass: undefined,
  failureFingerprint: undefined,
  failureReason: undefined,
  parentRunId: request.parentRunId,
  correlationId: request.correlationId,
  deliveries: 1,
  lastDeliveredAt: request.now
})

/** An acquire refused; `run` is the run as it is now (undefined: no such run). */
export const acquireRefused = (
  request: EventStore.AcquireRequest,
  run: EventStore.RunRecord | undefined
): StoreError.LeaseLost =>
  new StoreError.LeaseLost({
    runId: request.runId,
    token: request.expectedToken,
    message: run === undefined || run.leaseToken !== request.expectedToken
      ? `run ${request.runId} was taken by another worker (token ${run?.leaseToken ?? "none"})`
      : run.status === "running" && run.leaseExpiresAt > request.now
      ? `run ${request.runId} is still leased by ${run.owner} until ${new Date(run.leaseExpiresAt).toISOString()}`
      // Not expired-blocked, token unchanged: another worker holds the row, taking the run over right now.
      : `run ${request.runId} is being taken over by another worker`
  })

/** A run filter as SQL conditions on the `runs` table, with their parameters (`?` placeholders). */
export const runFilterWhere = (filter: EventStore.RunFilter): Array<[string, unknown]> => {
  const where: Array<[string, unknown]> = []
  if (filter.status !== undefined) where.push(["status = ?", filter.status])
  if (filter.pipeline !== undefined) where.push(["pipeline = ?", filter.pipeline])
  if (filter.version !== undefined) where.push(["version = ?", filter.version])
  if (filter.key !== undefined) where.push(["key = ?", filter.key])
  if (filter.since !== undefined) where.push(["updated_at >= ?", filter.since])
  return where
}
