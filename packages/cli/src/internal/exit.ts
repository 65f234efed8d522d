/**
 * Exit codes and the one line a person reads when something is wrong. 0: success. 1: the run, replay or
 * rollback failed or diverged. 2: bad usage or input (a missing store, an unknown run, a config that does
 * not load). Errors print one line without a stack trace; `--debug` adds the full cause.
 */
import { ValidationError } from "@effect/cli"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type { Style } from "./render.js"

export const Success = 0
export const Failed = 1
export const BadInput = 2
export type Code = typeof Success | typeof Failed | typeof BadInput

/**
 * What a command ends with when it does not succeed. An empty `message` prints nothing (the command has
 * already said why, e.g. a replay's report of its divergence).
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly code: Code
  readonly message: string
  readonly cause?: unknown
}> {}

export const badInput = (message: string, cause?: unknown) => new CliError({ code: BadInput, message, cause })
export const failed = (message: string, cause?: unknown) => new CliError({ code: Failed, message, cause })

/**
 * ledgerflow's own errors, by tag: which exit code, and an optional hint after their message — the command
 * to type, which the library's own message does not know.
 */
const known: Record<string, { readonly code: Code; readonly hint?: string | ((error: unknown) => string | undefined) }> = {
  // The store or the input is wrong: nothing was done.
  NotALedgerflowStore: { code: BadInput },
  StoreTooNew: { code: BadInput },
  RunNotFound: {
    code: BadInput,
    // Not for an ambiguous prefix: there the message already says to type more of the id.
    hint: (error) => Predicate.hasProperty(error, "ambiguous") && error.ambiguous === true ? undefined : "list runs with `ledgerflow runs`"
  },
  UnknownEvent: { code: BadInput },
  RunNotResumable: { code: BadInput, hint: "see what happened with `ledgerflow show <run>`, then `ledgerflow resume` or `ledgerflow rollback` it" },
  PipelineMismatch: { code: BadInput },
  InvalidInput: { code: BadInput },
  InvalidKey: { code: BadInput },
  KeyConflict: { code: BadInput },
  // The operation was tried and did not succeed.
  StoreError: { code: Failed },
  RunInProgress: { code: Failed, hint: "`ledgerflow resume <run> --wait` waits for it" },
  CircuitOpen: { code: Failed },
  LeaseLost: { code: Failed, hint: "another worker took the run over; see `ledgerflow show`" },
  SeqConflict: { code: Failed, hint: "another worker appended to the run; retry" },
  StepDiverged: { code: Failed, hint: "resume with --reexecute-diverged to run the changed steps again" },
  DuplicateStepName: { code: Failed, hint: "rename one of the steps, then `ledgerflow resume` the run" },
  PastPivot: { code: Failed, hint: "`ledgerflow resume` it instead" },
  Transient: { code: Failed },
  Deterministic: { code: Failed }
}

/** What a person reads: a failure's `reason` (its `message` is a dump of its fields), else the message. */
const messageOf = (error: unknown): string => {
  if (Predicate.hasProperty(error, "reason") && typeof error.reason === "string") return error.reason
  if (Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message !== "") {
    return error.message
  }
  return String(error)
}

/** The first line of a message: an error is one line unless `--debug` asks for more. */
const oneLine = (s: string): string => s.split("\n").find((l) => l.trim() !== "")?.trim() ?? s

export interface Report {
  readonly code: number
  /** What to print on stderr (nothing when the error was already shown, e.g. by the parser). */
  readonly lines: ReadonlyArray<string>
}

/**
 * A command's error as a `CliError`: ledgerflow's own errors (by tag) get their exit code and their
 * message in one line; the original stays as the cause, for `--debug`.
 */
export const fromError = (error: unknown): CliError => {
  if (error instanceof CliError) return error
  const tag = Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : undefined
  const entry = tag === undefined ? undefined : known[tag]
  if (entry === undefined) return new CliError({ code: Failed, message: oneLine(messageOf(error)), cause: error })
  const kind = tag === "Transient" || tag === "Deterministic" ? `${tag.toLowerCase()} failure: ` : ""
  const hint = typeof entry.hint === "function" ? entry.hint(error) : entry.hint
  const text = `${kind}${oneLine(messageOf(error))}${hint !== undefined ? `; ${hint}` : ""}`
  return new CliError({ code: entry.code, message: text, cause: error })
}

/** Turn whatever a command ended with into an exit code and what to print. */
export const report = (
  cause: Cause.Cause<unknown>,
  options: {
    readonly debug: boolean
    readonly style: Style
    /** For a command the parser did not recognise: the one that was probably meant. */
    readonly didYouMean?: () => string | undefined
  }
): Report => {
  const { debug, style } = options
  const detail = debug ? [style.dim(Cause.pretty(cause, { renderErrorCause: true }))] : []
  if (Cause.isInterruptedOnly(cause)) return { code: 130, lines: [] }
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    // The parser has printed its own message (and the help, when asked for).
    if (ValidationError.isValidationError(failure.value)) {
      const meant = ValidationError.isCommandMismatch(failure.value) ? options.didYouMean?.() : undefined
      return { code: BadInput, lines: [...(meant === undefined ? [] : [`did you mean \`${meant}\`?`]), ...detail] }
    }
    const error = fromError(failure.value)
    return { code: error.code, lines: [...(error.message === "" ? [] : [line(style, error.message)]), ...detail] }
  }
  // A defect: a bug in ledgerflow or in the pipeline's code.
  const squashed = Cause.squash(cause)
  return {
    code: Failed,
    lines: [
      line(style, `unexpected error: ${oneLine(messageOf(squashed))}${debug ? "" : " (run again with --debug for the stack trace)"}`),
      ...detail
    ]
  }
}

const line = (style: Style, message: string) => `${style.red(style.bold("error:"))} ${message}`
