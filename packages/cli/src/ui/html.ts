/**
 * HTML as values: a tagged template that escapes every interpolated string, so a run key, a failure
 * reason or a step's output JSON can never become markup. Only `Html` values (built here) pass as is.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

export type Part = Html | string | number | undefined | null | false | ReadonlyArray<Part>

const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

export const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => entities[c] ?? c)

// Array.isArray does not narrow a ReadonlyArray member of a union.
const isParts = (part: Part): part is ReadonlyArray<Part> => Array.isArray(part)

const render = (part: Part): string =>
  part instanceof Html
    ? part.value
    : isParts(part)
    ? part.map(render).join("")
    : part === undefined || part === null || part === false
    ? ""
    : escape(String(part))

/** `html\`<td>${text}</td>\``: strings and numbers escaped, `Html` kept, arrays joined, nullish dropped. */
export const html = (strings: TemplateStringsArray, ...parts: ReadonlyArray<Part>): Html =>
  new Html(strings.reduce((out, s, i) => out + s + (i < parts.length ? render(parts[i]) : ""), ""))

/** Markup made here (an SVG, an asset) that must not be escaped. */
export const raw = (markup: string): Html => new Html(markup)

/** A query string from the non-empty values, `?` included (or nothing). */
export const query = (params: Record<string, string | number | undefined>): string => {
  const search = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") search.set(k, String(v))
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}
