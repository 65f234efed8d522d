/**
 * Writing results: stdout for what was asked (text, JSON, NDJSON), stderr for progress and notes. Progress
 * shows only when stderr is a terminal, and is erased before anything else is printed.
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { defaultWidth } from "./render.js"

/** Lines to stdout. */
export const lines = (text: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (text.length > 0) process.stdout.write(`${text.join("\n")}\n`)
  })

/** One JSON document to stdout. */
export const json = (value: unknown): Effect.Effect<void> =>
  Effect.sync(() => void process.stdout.write(`${JSON.stringify(value)}\n`))

/** Objects as NDJSON (one a line) to stdout. */
export const ndjson = (values: ReadonlyArray<unknown>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (values.length > 0) process.stdout.write(`${values.map((v) => JSON.stringify(v)).join("\n")}\n`)
  })

/** A note on stderr (e.g. "showing 50 of more runs"). */
export const note = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stderr.write(`${text}\n`))

const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** A live status line on stderr, when it is a terminal; `update` changes its text. */
export interface Progress {
  readonly update: (text: string) => void
}

/**
 * Run `body` with a progress line on `stream` (stderr) when it is a terminal: the label, what `update`
 * last said, and the time spent. The line is erased when `body` ends, however it ends.
 */
export const withProgress = <A, E, R>(
  label: string,
  body: (progress: Progress) => Effect.Effect<A, E, R>,
  stream: Pick<NodeJS.WriteStream, "isTTY" | "columns" | "write"> = process.stderr
): Effect.Effect<A, E, R> => {
  if (stream.isTTY !== true) return body({ update: () => {} })
  let status = ""
  const started = Date.now()
  let frame = 0
  const draw = Effect.sync(() => {
    const elapsed = `${Math.floor((Date.now() - started) / 1000)}s`
    const text = `${spinner[frame++ % spinner.length]} ${label}${status === "" ? "" : ` ${status}`} (${elapsed})`
    // A pseudo-terminal without a size reports 0 columns: 80 then, as for tables.
    stream.write(`\r\x1b[2K${text.slice(0, defaultWidth(stream) - 1)}`)
  })
  return Effect.gen(function*() {
    // The first frame after 200 ms: quick work shows no progress at all. Closing the scope stops it.
    yield* Effect.forkScoped(Effect.delay(Effect.repeat(draw, Schedule.spaced("100 millis")), "200 millis"))
    return yield* body({ update: (text) => void (status = text) })
  }).pipe(
    Effect.scoped,
    Effect.ensuring(Effect.sync(() => void stream.write("\r\x1b[2K")))
  )
}
