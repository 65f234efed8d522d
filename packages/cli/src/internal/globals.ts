/**
 * The options every command takes (`--db`, `--config`, `--json`, `--debug`), accepted before the command
 * name (`ledgerflow --db x runs`) and after it (`ledgerflow runs --db x`), resolved once into `Globals`.
 */
import { Options } from "@effect/cli"
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import { defaultWidth, makeStyle, type Style } from "./render.js"

export const defaultDb = ".ledgerflow/ledger.db"
export const defaultConfig = "ledgerflow.config.ts"

/** The global options as parsed: each may be given on the root command, on the leaf, or not at all. */
export const options = {
  db: Options.text("db").pipe(
    Options.withPseudoName("PATH"),
    Options.withDescription(
      `The ledgerflow store: a SQLite file, or a Postgres server as postgres://user:password@host:port/database. ` +
        `Default: $LEDGERFLOW_DB, else ${defaultDb}.`
    ),
    Options.optional
  ),
  config: Options.text("config").pipe(
    Options.withPseudoName("PATH"),
    Options.withDescription(
      `The config exporting \`pipelines\` (and optionally \`layer\`); TypeScript works as is. Default: ./${defaultConfig}.`
    ),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Machine output: JSON, or NDJSON (one object a line) for lists.")),
  debug: Options.boolean("debug").pipe(Options.withDescription("On error, print the full cause with stack traces."))
}

export interface Flags {
  readonly db: Option.Option<string>
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly debug: boolean
}

export interface GlobalsService {
  /** The store file, as given (messages repeat what the user typed). */
  readonly db: string
  /** Where `db` came from: a missing file is explained differently for each. */
  readonly dbFrom: "--db" | "LEDGERFLOW_DB" | "default"
  /** The config file, as given, or the default in the working directory. */
  readonly config: string
  readonly configGiven: boolean
  readonly json: boolean
  readonly debug: boolean
  /** Colours for stdout: on only for a TTY, never with `--json` or `NO_COLOR`. */
  readonly style: Style
  /** Stderr's colours, for progress and messages. */
  readonly errStyle: Style
  /** The width tables fit in. */
  readonly width: number
}

export class Globals extends Context.Tag("@ledgerflow/cli/Globals")<Globals, GlobalsService>() {}

/** The leaf's value wins over the root's; unset options fall back to the environment, then the defaults. */
export const resolve = (root: Flags, leaf: Flags, env: NodeJS.ProcessEnv = process.env): GlobalsService => {
  const dbFlag = Option.orElse(leaf.db, () => root.db)
  const envDb = env["LEDGERFLOW_DB"]
  const config = Option.orElse(leaf.config, () => root.config)
  const json = leaf.json || root.json
  return {
    db: Option.getOrElse(dbFlag, () => envDb !== undefined && envDb !== "" ? envDb : defaultDb),
    dbFrom: Option.isSome(dbFlag) ? "--db" : envDb !== undefined && envDb !== "" ? "LEDGERFLOW_DB" : "default",
    config: Option.getOrElse(config, () => defaultConfig),
    configGiven: Option.isSome(config),
    json,
    debug: leaf.debug || root.debug,
    style: makeStyle(colourFor(process.stdout, env) && !json),
    errStyle: makeStyle(colourFor(process.stderr, env)),
    width: defaultWidth(process.stdout)
  }
}

/** Colour on a TTY unless `NO_COLOR` is set; `FORCE_COLOR` (not "0") turns it on anywhere. */
export const colourFor = (stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean => {
  if (env["NO_COLOR"] !== undefined && env["NO_COLOR"] !== "") return false
  const force = env["FORCE_COLOR"]
  if (force !== undefined && force !== "" && force !== "0") return true
  return stream.isTTY === true
}
