/**
 * Small inline SVG charts, drawn on the server: no script, no library. Each chart has a title and a
 * description for screen readers; the table beside it carries the same numbers.
 */
import { html, type Html } from "./html.js"

export interface Series {
  readonly key: string
  readonly label: string
  /** A CSS colour. */
  readonly colour: string
}

export interface BarRow {
  readonly label: string
  /** By series key: the bar's length (its unit shared by the chart) and what to write beside it. */
  readonly values: Readonly<Record<string, { readonly value: number; readonly text: string }>>
}

/** The charts' geometry, in SVG units: 960 wide, scaled to the page's width. */
const { barHeight, gap, labelWidth, rowGap, valueWidth, width } = { width: 960, labelWidth: 260, valueWidth: 110, barHeight: 13, gap: 3, rowGap: 12 }

/** Round a label to fit its column: SVG text does not wrap. */
const fit = (text: string, chars: number): string => (text.length > chars ? `${text.slice(0, chars - 1)}…` : text)

/** One bar per series for each row, on one scale: what a table says in numbers, as lengths. */
export const bars = (options: {
  readonly title: string
  readonly description: string
  readonly series: ReadonlyArray<Series>
  readonly rows: ReadonlyArray<BarRow>
}): Html => {
  const { rows, series } = options
  const max = Math.max(0, ...rows.flatMap((r) => series.map((s) => r.values[s.key]?.value ?? 0)))
  const scale = (v: number) => (max === 0 ? 0 : (v / max) * (width - labelWidth - valueWidth - 10))
  const rowHeight = series.length * (barHeight + gap) - gap + rowGap
  const height = rows.length * rowHeight + 8
  const id = options.title.toLowerCase().replace(/[^a-z0-9]+/g, "-")
  return html`<figure>
<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-t ${id}-d">
<title id="${id}-t">${options.title}</title>
<desc id="${id}-d">${options.description}</desc>
${
    rows.map((row, i) => {
      const y = i * rowHeight + 4
      const middle = y + (rowHeight - rowGap) / 2
      return html`<g class="bar-row" data-label="${row.label}">
<text x="${labelWidth - 10}" y="${middle + 4}" text-anchor="end" font-size="13" fill="#1f2328">${fit(row.label, 34)}</text>
${
        series.map((s, j) => {
          const v = row.values[s.key]
          // A zero draws nothing: the table says $0, the chart shows what there is.
          if (v === undefined || v.value <= 0) return ""
          const by = y + j * (barHeight + gap)
          const w = Math.max(2, scale(v.value))
          return html`<rect x="${labelWidth}" y="${by}" width="${w.toFixed(1)}" height="${barHeight}" rx="2" fill="${s.colour}"><title>${row.label} · ${s.label}: ${v.text}</title></rect>
<text x="${labelWidth + w + 6}" y="${by + barHeight - 2}" font-size="12" fill="#59636e">${v.text}</text>`
        })
      }
</g>`
    })
  }
</svg>
<figcaption><ul class="legend">${
    series.map((s) => html`<li><i style="background:${s.colour}"></i>${s.label}</li>`)
  }</ul></figcaption>
</figure>`
}

/** A share of a whole as one stacked bar (e.g. each step's part of the dollars spent). */
export const shares = (options: {
  readonly title: string
  readonly parts: ReadonlyArray<{ readonly label: string; readonly share: number; readonly text: string }>
}): Html => {
  const palette = ["#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e", "#57606a"]
  const height = 34
  let x = 0
  const id = options.title.toLowerCase().replace(/[^a-z0-9]+/g, "-")
  const parts = options.parts.filter((p) => p.share > 0)
  return html`<figure>
<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-t">
<title id="${id}-t">${options.title}</title>
${
    parts.map((p, i) => {
      const w = p.share * width
      const rect = html`<rect x="${x.toFixed(1)}" y="4" width="${w.toFixed(1)}" height="26" fill="${
        palette[i % palette.length]
      }"><title>${p.label}: ${p.text}</title></rect>${
        w > 70
          ? html`<text x="${(x + 6).toFixed(1)}" y="22" font-size="12" fill="#ffffff">${fit(p.label, Math.floor(w / 7.5))}</text>`
          : ""
      }`
      x += w
      return rect
    })
  }
</svg>
<figcaption><ul class="legend">${
    parts.map((p, i) => html`<li><i style="background:${palette[i % palette.length]}"></i>${p.label} ${p.text}</li>`)
  }</ul></figcaption>
</figure>`
}
