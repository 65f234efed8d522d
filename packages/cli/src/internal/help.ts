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
