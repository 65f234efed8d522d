/**
 * The errors an `EventStore` can fail with. Each says what went wrong and what to do.
 */
import * as Schema from "effect/Schema"

/** The store failed (disk, permissions, corruption). `message` says what to do. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {}

/** An append or renewal carried a stale fencing token: another worker owns the run now. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  runId: Schema.String,
  token: Schema.Number,
  message: Schema.String
}) {
  /** An append refused for its token; `current` is the run's token now (undefined: no such run). */
  static appendRefused(runId: string, token: number, current: number | undefined): LeaseLost {
    return new LeaseLost({
      runId,
      token,
      message: `append to run ${runId} refused: token ${token} is stale (current ${
        current ?? "none"
      }); another worker owns the run`
    })
  }

  /** A lease renewal refused for its token: the run was taken over. */
  static renewalRefused(runId: string, token: number): LeaseLost {
    return new LeaseLost({ runId, token, message: `lease of run ${runId} was taken over (token ${token} is stale)` })
  }
}

/** `expectedSeq` did not match the run's last seq. */
export class SeqConflict extends Schema.TaggedError<SeqConflict>()("SeqConflict", {
  runId: Schema.String,
  expectedSeq: Schema.Number,
  actualSeq: Schema.Number
}) {}

/** The file is a database, but not a ledgerflow store. Nothing was written to it. */
export class NotALedgerflowStore extends Schema.TaggedError<NotALedgerflowStore>()("NotALedgerflowStore", {
  filename: Schema.String,
  message: Schema.String
}) {}

/** The store was written by a newer ledgerflow; this code refuses to touch it. */
export class StoreTooNew extends Schema.TaggedError<StoreTooNew>()("StoreTooNew", {
  filename: Schema.String,
  storeVersion: Schema.Number,
  supportedVersion: Schema.Number,
  message: Schema.String
}) {}
