/**
 * Why a run could not be started or continued — as opposed to why it failed (`Failure`). Each carries
 * what to do next.
 */
import * as Schema from "effect/Schema"

/** Another worker holds a live lease on the run with this key. */
export class RunInProgress extends Schema.TaggedError<RunInProgress>()("RunInProgress", {
  runId: Schema.String,
  owner: Schema.String,
  leaseExpiresAt: Schema.Number,
  message: Schema.String
}) {}

/** The pipeline input does not match the pipeline's input Schema. Nothing was written. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  pipeline: Schema.String,
  message: Schema.String
}) {}

/** The run key is unusable. Nothing was written. */
export class InvalidKey extends Schema.TaggedError<InvalidKey>()("InvalidKey", {
  key: Schema.String,
  message: Schema.String
}) {}

/** No run has this id (or id prefix); `ambiguous`: the prefix names several runs. */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", {
  runId: Schema.String,
  ambiguous: Schema.optional(Schema.Boolean),
  message: Schema.String
}) {}

/** The run is in a state this operation cannot continue from. */
export class RunNotResumable extends Schema.TaggedError<RunNotResumable>()("RunNotResumable", {
  runId: Schema.String,
  status: Schema.String,
  message: Schema.String
}) {}

/** The run belongs to another pipeline than the one given. */
export class PipelineMismatch extends Schema.TaggedError<PipelineMismatch>()("PipelineMismatch", {
  runId: Schema.String,
  expected: Schema.String,
  actual: Schema.String,
  message: Schema.String
}) {}

/** The storm breaker is open: runs of this pipeline version keep failing the same way. Nothing ran. */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", {
  pipeline: Schema.String,
  version: Schema.String,
  fingerprint: Schema.String,
  runs: Schema.Array(Schema.String),
  message: Schema.String
}) {}

const control = /[\u0000-\u001f\u007f]/

/** Check a run key; the message says what is wrong and what to do. */
export const validateKey = (key: string): InvalidKey | undefined =>
  key.length === 0
    ? new InvalidKey({ key, message: "the run key is empty; pass a non-empty key, or none to derive one from the input" })
    : key.length > 512
    ? new InvalidKey({ key: key.slice(0, 40), message: `the run key is ${key.length} characters long; keys are at most 512 characters (hash long identifiers first)` })
    : control.test(key)
    ? new InvalidKey({ key, message: `the run key ${JSON.stringify(key)} contains control characters; use printable text such as "order-1234"` })
    : undefined

/**
 * A key is bound to the input it was first started with: this start gave the same key with another input.
 * Nothing was executed; never another input's stored output.
 */
export class KeyConflict extends Schema.TaggedError<KeyConflict>()("KeyConflict", {
  pipeline: Schema.String,
  key: Schema.String,
  /** The run the key already belongs to. */
  runId: Schema.String,
  /** The input hash the run was started with, and the one this start gave. */
  storedInputHash: Schema.String,
  inputHash: Schema.String,
  message: Schema.String
}) {}

/**
 * The run is past its pivot (an irreversible step completed): it can only go forward. A rollback was
 * refused and the run left as it was.
 */
export class PastPivot extends Schema.TaggedError<PastPivot>()("PastPivot", {
  runId: Schema.String,
  /** The irreversible step that completed. */
  stepId: Schema.String,
  status: Schema.String,
  message: Schema.String
}) {}
