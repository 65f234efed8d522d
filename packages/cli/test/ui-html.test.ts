/**
 * The UI's HTML values: whatever a run key, a failure reason or a step's output holds, interpolated text
 * is text — it never becomes markup — and reads back as it was.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { html, query, raw } from "../src/ui/html.js"

const unescape = (s: string) =>
  s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", "\"").replaceAll("&#39;", "'").replaceAll("&amp;", "&")

describe("ui html", () => {
  it.prop("any interpolated string is escaped: no tag, no attribute break, and it reads back unchanged", {
    // Markup's own characters often, any other character too.
    text: fc.string({ unit: fc.oneof(fc.constantFrom("<", ">", "&", "\"", "'", "&lt;", "</td>"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 })) })
  }, ({ text }) => {
    const cell = html`<td title="${text}">${text}</td>`.value
    const inner = cell.slice(cell.indexOf(">") + 1, cell.lastIndexOf("</td>"))
    expect(inner).not.toMatch(/[<>"']/)
    expect(unescape(inner)).toBe(text)
    expect(cell.match(/"/g)?.length).toBe(2)
  })

  it.prop("nested values, arrays and nullish parts render as their text, in order", {
    parts: fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(undefined), fc.constant(null), fc.constant(false as const)))
  }, ({ parts }) => {
    const expected = parts.map((p) => (p === undefined || p === null || p === false ? "" : String(p))).join("")
    expect(unescape(html`${parts}`.value)).toBe(expected)
    expect(html`${html`<b>${parts}</b>`}`.value).toBe(`<b>${html`${parts}`.value}</b>`)
  })

  it("keeps markup made with raw, and builds query strings from the non-empty values", () => {
    expect(html`${raw("<svg/>")}`.value).toBe("<svg/>")
    expect(query({ status: "failed", key: "", page: 2, since: undefined })).toBe("?status=failed&page=2")
    expect(query({ key: "" })).toBe("")
  })
})
