/**
 * Help texts: what a command does, then examples to copy. `--help` of every command shows one.
 */
import { HelpDoc, Span } from "@effect/cli"

export interface Example {
  readonly command: string
  readonly does: string
}

export const describe = (
  summary: string,
  examples: ReadonlyArray<Example>,
  notes: ReadonlyArray<string> = []
): HelpDoc.HelpDoc =>
  HelpDoc.blocks([
    HelpDoc.p(summary),
    ...notes.map((note) => HelpDoc.p(note)),
    HelpDoc.p(Span.strong("Examples")),
    ...examples.map((e) => HelpDoc.p(Span.spans([Span.code(`  $ ${e.command}`), Span.text(`\n      ${e.does}`)])))
  ])

/**
 * @effect/cli puts its type's blurb ("A user-defined piece of text.") before each option's own description,
 * and names a subcommand's usage by the subcommand alone (`$ show …`). Every option here has a description
 * of its own, so the blurbs go; usage lines start with `ledgerflow` and the command's path.
 */
const blurbs = /^[ \t]*(?:A user-defined piece of text\.|A true or false value\.|An integer\.|A floating point number\.)\r?\n\r?\n/gm
const usage = /^((?:\x1b\[[0-9;]*m)*\$ (?:\x1b\[[0-9;]*m)*)([a-z][a-z-]*)(?= |\x1b|$)/gm

export const polish = (text: string, tree: ReadonlyMap<string, ReadonlyArray<string>>): string => {
  const paths = new Map<string, string>()
  for (const [name, children] of tree) {
    paths.set(name, name)
    for (const child of children) if (!tree.has(child)) paths.set(child, `${name} ${child}`)
  }
  return text
    .replace(blurbs, "")
    .replace(usage, (line, prefix: string, name: string) =>
      name === "ledgerflow" || !paths.has(name) ? line : `${prefix}ledgerflow ${paths.get(name)}`)
}
