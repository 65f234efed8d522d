/**
 * The `ledgerflow` command tree. Every command takes the global options (`--db`, `--config`, `--json`,
 * `--debug`) before or after its name; they are resolved once into `Globals` for the command's handler.
 */
import { Command, ValidationError } from "@effect/cli"
import * as HashMap from "effect/HashMap"
import * as Effect from "effect/Effect"
import * as Breaker from "./commands/breaker.js"
import * as Cost from "./commands/cost.js"
import * as Export from "./commands/export.js"
import * as Failures from "./commands/failures.js"
import * as Replay from "./commands/replay.js"
import * as Resume from "./commands/resume.js"
import * as Rollback from "./commands/rollback.js"
import * as Runs from "./commands/runs.js"
import * as Show from "./commands/show.js"
import * as Ui from "./commands/ui.js"
import { type Flags, Globals, options as globalOptions, resolve } from "./internal/globals.js"
import { describe } from "./internal/help.js"
import type { Tree } from "./internal/suggest.js"
import { version } from "./internal/version.js"

type Help = Effect.Effect<never, ValidationError.ValidationError>

/** `ledgerflow` or `ledgerflow breaker` alone: the help, exactly as `--help` prints it. */
const showHelp = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>): Help =>
  Effect.fail(ValidationError.helpRequested(command.descriptor))

const root = Command.make("ledgerflow", globalOptions, (): Help => showHelp(command))

/** Give a command its resolved global options: its own flags win over the root's. */
const leaf = <Name extends string, R, E, A extends Flags>(command: Command.Command<Name, R, E, A>) =>
  Command.provideEffect(command, Globals, (flags) => Effect.map(root, (top) => resolve(top, flags)))

const breaker = Command.make("breaker", {}, (): Help => showHelp(breakerTree))
const breakerTree = breaker.pipe(
  Command.withDescription(Breaker.description),
  Command.withSubcommands([leaf(Breaker.list), leaf(Breaker.reset)])
)

export const command = root.pipe(
  Command.withDescription(describe(
    "Inspect, replay, resume and roll back ledgerflow runs. Every command takes --help; run ids may be shortened to a unique prefix.",
    [
      { command: "ledgerflow runs --status failed", does: "the runs that failed" },
      { command: "ledgerflow show run_0m8x2k", does: "what one run did, step by step" },
      { command: "ledgerflow resume run_0m8x2k", does: "finish it after a fix, completed steps served from the log" }
    ],
    [
      "Exit codes: 0 success; 1 the run, replay or rollback failed or diverged; 2 bad usage or input (no store, unknown run, a config that does not load).",
      "Environment: LEDGERFLOW_DB (the store, like --db); NO_COLOR (no colours; colours are only ever used on a terminal)."
    ]
  )),
  Command.withSubcommands([
    leaf(Runs.command),
    leaf(Show.command),
    leaf(Replay.command),
    leaf(Resume.command),
    leaf(Rollback.command),
    leaf(Failures.command),
    leaf(Export.command),
    leaf(Cost.command),
    breakerTree,
    leaf(Ui.command)
  ])
)

/** Parse `argv` (as `process.argv`: node, script, args...) and run the command it names. */
export const run = Command.run(command, { name: "ledgerflow", version })

/** The command tree by name (`breaker` → list, reset): for "did you mean" and the usage lines of `--help`. */
const names = <Name extends string, R, E, A>(c: Command.Command<Name, R, E, A>) => [...HashMap.keys(Command.getSubcommands(c))]
export const tree: Tree = new Map(names(command).map((name) => [name, name === "breaker" ? names(breakerTree) : []] as const))
