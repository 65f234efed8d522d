/**
 * The program edge: parse the command line, run the command, print what went wrong in one line (with the
 * full cause under `--debug`), and exit with the code the command earned.
 */
import { CliConfig } from "@effect/cli"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import type * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cli from "./Cli.js"
import * as ExitCode from "./internal/exit.js"
import { colourFor } from "./internal/globals.js"
import { polish } from "./internal/help.js"
import { defaultWidth, makeStyle, rewrap, stripAnsi } from "./internal/render.js"
import { didYouMean } from "./internal/suggest.js"

// `| head` closing the pipe early is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0)
  throw error
})

// Read before parsing so that even a parse error can be explained with its cause.
const debug = process.argv.includes("--debug")

/**
 * @effect/cli prints help and parse errors with colours and without wrapping: strip the colours where they
 * are off, polish the help (see `polish`), and wrap to the terminal's width (80 columns when not a terminal).
 */
const consoleFor = (base: Console.Console): Console.Console => {
  const text = (stream: NodeJS.WriteStream) => {
    const colour = colourFor(stream)
    const width = defaultWidth(stream)
    return (s: unknown) => typeof s === "string" ? rewrap(polish(colour ? s : stripAnsi(s), Cli.tree), width) : s
  }
  const out = text(process.stdout)
  const err = text(process.stderr)
  return {
    ...base,
    log: (...args) => base.log(...args.map(out)),
    error: (...args) => base.error(...args.map(err)),
    unsafe: { ...base.unsafe, log: (...args) => base.unsafe.log(...args.map(out)), error: (...args) => base.unsafe.error(...args.map(err)) }
  }
}

const program = Cli.run(process.argv).pipe(
  Effect.as(ExitCode.Success),
  Effect.catchAllCause((cause) => {
    const report = ExitCode.report(cause, {
      debug,
      style: makeStyle(colourFor(process.stderr)),
      didYouMean: () => didYouMean(process.argv.slice(2), Cli.tree)
    })
    return Effect.as(
      Effect.sync(() => report.lines.forEach((line) => process.stderr.write(`${line}\n`))),
      report.code
    )
  }),
  (effect) => Effect.consoleWith((base) => Effect.withConsole(effect, consoleFor(base))),
  // What @effect/cli needs, and no more: the whole platform takes a while to load.
  Effect.provide(Layer.mergeAll(
    NodeFileSystem.layer,
    NodePath.layer,
    NodeTerminal.layer,
    CliConfig.layer({ showBuiltIns: false })
  ))
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exit._tag === "Success" && typeof exit.value === "number" ? exit.value : 1)
})
