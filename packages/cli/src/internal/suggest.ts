/**
 * "Did you mean": the command a mistyped word was probably meant to be. @effect/cli lists the valid
 * subcommands; this names the likely one, as git does.
 */

/** The command tree by name: each top-level command, with its subcommands (`breaker` → list, reset). */
export type Tree = ReadonlyMap<string, ReadonlyArray<string>>

/** Options that take a value (`--db PATH`): the word after them is not a command. */
const valued = new Set(["--db", "--config"])

/** Edit distance (insertions, deletions, substitutions, and a swap of two neighbours counts one). */
export const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/** The closest name, when one is close enough to be what was meant (or starts with what was typed). */
export const closest = (word: string, names: ReadonlyArray<string>): string | undefined => {
  const w = word.toLowerCase()
  const scored = names
    .map((name) => ({ name, score: name.startsWith(w) ? 0 : distance(w, name) }))
    .filter(({ name, score }) => score <= Math.max(1, Math.floor(name.length / 3)))
    .sort((x, y) => x.score - y.score)
  return scored[0]?.name
}

/**
 * For a command line (the arguments after the script) whose command was not recognised: the command
 * it probably meant, written out in full (`ledgerflow breaker reset`), or nothing.
 */
export const didYouMean = (args: ReadonlyArray<string>, tree: Tree): string | undefined => {
  const words: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg.startsWith("-")) {
      if (valued.has(arg)) i++
      continue
    }
    words.push(arg)
  }
  const [first, second] = words
  if (first === undefined) return undefined
  const children = tree.get(first)
  if (children === undefined) {
    const meant = closest(first, [...tree.keys()])
    return meant === undefined ? undefined : `ledgerflow ${meant}`
  }
  if (second === undefined || children.length === 0 || children.includes(second)) return undefined
  const meant = closest(second, children)
  return meant === undefined ? undefined : `ledgerflow ${first} ${meant}`
}
