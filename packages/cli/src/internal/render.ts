/**
 * Text for people: colours that switch off when output is not a terminal, and tables that fit 80 columns
 * (the terminal's width on a TTY), truncating or wrapping the one flexible column instead of overflowing.
 */

export interface Style {
  readonly enabled: boolean
  readonly bold: (s: string) => string
  readonly dim: (s: string) => string
  readonly red: (s: string) => string
  readonly green: (s: string) => string
  readonly yellow: (s: string) => string
  readonly cyan: (s: string) => string
}

const sgr = (enabled: boolean, open: number, close: number) => (s: string) =>
  enabled && s.length > 0 ? `\x1b[${open}m${s}\x1b[${close}m` : s

export const makeStyle = (enabled: boolean): Style => ({
  enabled,
  bold: sgr(enabled, 1, 22),
  dim: sgr(enabled, 2, 22),
  red: sgr(enabled, 31, 39),
  green: sgr(enabled, 32, 39),
  yellow: sgr(enabled, 33, 39),
  cyan: sgr(enabled, 36, 39)
})

const ansi = /\x1b\[[0-9;]*[A-Za-z]/g

/** Remove terminal escapes (for output that is not a terminal). */
export const stripAnsi = (s: string): string => s.replace(ansi, "")

/** 80 columns, or the terminal's width when stdout is a TTY. */
export const defaultWidth = (stream: { readonly isTTY?: boolean; readonly columns?: number }): number =>
  stream.isTTY === true && stream.columns !== undefined && stream.columns >= 40 ? stream.columns : 80

/** Cut `s` to `width` characters, marking the cut with `…`. */
export const truncate = (s: string, width: number): string =>
  s.length <= width ? s : width <= 1 ? s.slice(0, width) : `${s.slice(0, width - 1)}…`

/** Break `s` into lines of at most `width` characters, at spaces where possible. */
export const wrap = (s: string, width: number): Array<string> => {
  const out: Array<string> = []
  for (const paragraph of s.split("\n")) {
    let line = ""
    for (const word of paragraph.split(" ")) {
      let w = word
      while (w.length > width) {
        if (line.length > 0) {
          out.push(line)
          line = ""
        }
        out.push(w.slice(0, width))
        w = w.slice(width)
      }
      if (line.length === 0) line = w
      else if (line.length + 1 + w.length <= width) line += ` ${w}`
      else {
        out.push(line)
        line = w
      }
    }
    out.push(line)
  }
  return out
}

/**
 * Re-wrap lines longer than `width` at spaces, continuing at the line's own indentation: for text that was
 * not laid out for the terminal (e.g. generated help). Escapes count for nothing in the width.
 */
export const rewrap = (text: string, width: number): string =>
  text.split("\n").flatMap((padded) => {
    const line = padded.trimEnd()
    if (stripAnsi(line).length <= width) return [line]
    const indent = /^\s*/.exec(line)?.[0] ?? ""
    const out: Array<string> = []
    let current = indent
    let visible = indent.length
    for (const word of line.slice(indent.length).split(" ")) {
      const w = stripAnsi(word).length
      if (visible > indent.length && visible + 1 + w > width) {
        out.push(current)
        current = indent + word
        visible = indent.length + w
      } else {
        current += visible > indent.length ? ` ${word}` : word
        visible += (visible > indent.length ? 1 : 0) + w
      }
    }
    out.push(current)
    return out
  }).join("\n")

/** A table cell: its text, and how to paint it once padded. */
export type Cell = string | { readonly text: string; readonly paint: (s: string) => string }

export interface Column {
  readonly header: string
  readonly align?: "left" | "right"
  /** The column that gives up width when the table is too wide (at most one). */
  readonly flex?: boolean
  /** Wrap the flexible column's text onto more lines instead of truncating it. */
  readonly wrap?: boolean
  /** Never wider than this. */
  readonly max?: number
  /** Never narrower than this: a column of times keeps its width whatever the times are. */
  readonly min?: number
  /** Never truncated to fit (run ids: a cut id cannot be pasted back). */
  readonly keep?: boolean
}

const textOf = (cell: Cell | undefined): string => cell === undefined ? "" : typeof cell === "string" ? cell : cell.text
const paintOf = (cell: Cell | undefined): (s: string) => string =>
  cell === undefined || typeof cell === "string" ? (s) => s : cell.paint

const gap = "  "

/** Lay out rows under headers: each column as wide as its widest cell, the whole within `width`. */
export const table = (
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<Cell>>,
  options: { readonly width: number; readonly style: Style }
): Array<string> => {
  const widths = columns.map((column, i) =>
    Math.min(
      column.max ?? Infinity,
      Math.max(column.min ?? 0, column.header.length, ...rows.map((row) => textOf(row[i]).length))
    )
  )
  const total = () => widths.reduce((a, b) => a + b, 0) + gap.length * (columns.length - 1)
  const flex = columns.findIndex((c) => c.flex === true)
  const floor = (i: number) => Math.max(columns[i]!.header.length, columns[i]!.min ?? 0, 6)
  if (total() > options.width && flex >= 0) {
    widths[flex] = Math.max(floor(flex), widths[flex]! - (total() - options.width))
  }
  // Still too wide: narrow the widest of the other columns that may be cut, one character at a time.
  while (total() > options.width) {
    let widest = -1
    widths.forEach((w, i) => {
      if (columns[i]!.keep !== true && w > floor(i) && (widest < 0 || w > widths[widest]!)) widest = i
    })
    if (widest < 0) break
    widths[widest]!--
  }
  const line = (cells: ReadonlyArray<string>, paints: ReadonlyArray<(s: string) => string>) =>
    cells.map((text, i) => {
      const w = widths[i]!
      const padded = columns[i]!.align === "right" ? text.padStart(w) : text.padEnd(w)
      return paints[i]!(padded)
    }).join(gap).trimEnd()
  const header = line(columns.map((c) => c.header), columns.map(() => options.style.bold))
  const body = rows.flatMap((row) => {
    const paints = columns.map((_, i) => paintOf(row[i]))
    const texts = columns.map((_, i) => textOf(row[i]))
    const lines: Array<Array<string>> = [texts.map((t, i) => truncate(t, widths[i]!))]
    if (flex >= 0 && columns[flex]!.wrap === true) {
      const wrapped = wrap(texts[flex]!, widths[flex]!)
      lines[0]![flex] = wrapped[0] ?? ""
      for (const more of wrapped.slice(1)) lines.push(columns.map((_, i) => i === flex ? more : ""))
    }
    return lines.map((cells) => line(cells, paints))
  })
  return [header, ...body]
}

/** `label  value` lines with the labels aligned. */
export const fields = (
  pairs: ReadonlyArray<readonly [string, string]>,
  options: { readonly width: number; readonly style: Style }
): Array<string> => {
  const w = Math.max(...pairs.map(([label]) => label.length))
  return pairs.flatMap(([label, value]) => {
    const [first = "", ...rest] = wrap(value, Math.max(20, options.width - w - 2))
    return [
      `${options.style.dim(label.padEnd(w))}  ${first}`.trimEnd(),
      ...rest.map((more) => `${" ".repeat(w)}  ${more}`)
    ]
  })
}
