/**
 * `ledgerflow-standin --port N [--script file.json]`: the Anthropic stand-in as a process, for examples
 * and tests that run in another process. It prints `listening on http://127.0.0.1:N` once it serves,
 * and runs until SIGINT/SIGTERM. Script it with `POST /_script`, read it with `GET /_meter`.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import { parseArgs } from "node:util"
import * as AnthropicStandIn from "./AnthropicStandIn.js"
import { describeParseError } from "./internal/request.js"

const usage = `Usage: ledgerflow-standin [--port N] [--script file.json]

A local stand-in for the Anthropic Messages API on 127.0.0.1.
  --port N             the port to listen on (default: an ephemeral port)
  --script file.json   script entries (one, or a list) to queue at start
Endpoints: POST /v1/messages, POST /v1/messages/count_tokens,
           GET /_meter, POST /_script (append entries), POST /_reset.`

class UsageError extends Schema.TaggedError<UsageError>()("UsageError", { message: Schema.String }) {}

const Port = Schema.NumberFromString.pipe(Schema.compose(Schema.Int), Schema.between(0, 65535))

const parse = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { values } = yield* Effect.try({
      try: () =>
        parseArgs({
          args: [...argv],
          options: {
            port: { type: "string" },
            script: { type: "string" },
            help: { type: "boolean", short: "h" }
          },
          strict: true
        }),
      catch: (error) => new UsageError({ message: error instanceof Error ? error.message : String(error) })
    })
    const port = values.port === undefined
      ? 0
      : yield* Schema.decodeUnknown(Port)(values.port).pipe(
        Effect.mapError(() => new UsageError({ message: `--port: not a port number: ${values.port}` }))
      )
    return { port, script: values.script, help: values.help === true }
  })

const readScript = (file: string) =>
  Effect.try({
    try: () => Fs.readFileSync(file, "utf8"),
    catch: (error) => new UsageError({ message: `--script: cannot read ${file}: ${String(error)}` })
  }).pipe(
    Effect.flatMap(Schema.decodeUnknown(AnthropicStandIn.ScriptFromJson)),
    Effect.mapError((error) =>
      error._tag === "ParseError"
        ? new UsageError({ message: `--script: ${file} is not a stand-in script: ${describeParseError(error)}` })
        : error
    ),
    Effect.map(Arr.ensure)
  )

const main = Effect.gen(function*() {
  const args = yield* parse(process.argv.slice(2))
  if (args.help) return yield* Effect.sync(() => process.stdout.write(`${usage}\n`))
  const items = args.script === undefined ? [] : yield* readScript(args.script)
  const standIn = yield* AnthropicStandIn.make({ port: args.port })
  yield* standIn.script(...items)
  yield* Effect.sync(() => process.stdout.write(`listening on ${standIn.url}\n`))
  return yield* Effect.never
}).pipe(Effect.scoped)

const fiber = Effect.runFork(main)
const stop = () => Effect.runFork(Fiber.interrupt(fiber))
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
fiber.addObserver((exit) => {
  process.off("SIGINT", stop)
  process.off("SIGTERM", stop)
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") {
    process.stderr.write(`ledgerflow-standin: ${failure.value.message}\n`)
    process.exitCode = failure.value._tag === "UsageError" ? 2 : 1
    if (failure.value._tag === "UsageError") process.stderr.write(`${usage}\n`)
  } else {
    process.stderr.write(`ledgerflow-standin: ${Cause.pretty(exit.cause)}\n`)
    process.exitCode = 1
  }
})
