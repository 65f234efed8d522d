/**
 * The page shell every view shares: a skip link, the top navigation (the current page marked for screen
 * readers), one <main> with one <h1>, the stylesheet and the live-refresh script from the package.
 */
import { type Html, html } from "./html.js"

export type Section = "runs" | "cost" | "failures" | "none"

export interface PageOptions {
  readonly title: string
  readonly section: Section
  /** The store's path, shown in the header so it is clear which ledger is on screen. */
  readonly store: string
  readonly body: Html
  /** When set, the page refreshes itself while runs change after this time (epoch ms). */
  readonly liveSince?: number | undefined
}

const nav: ReadonlyArray<readonly [Exclude<Section, "none">, string, string]> = [
  ["runs", "/", "Runs"],
  ["cost", "/cost", "Cost"],
  ["failures", "/failures", "Failures"]
]

export const page = (options: PageOptions): Html =>
  html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · ledgerflow</title>
<link rel="stylesheet" href="/assets/ledgerflow.css">
<script src="/assets/live.js" defer></script>
</head>
<body${options.liveSince !== undefined ? html` data-live-since="${options.liveSince}"` : ""}>
<a class="skip" href="#content">Skip to content</a>
<header class="top">
  <a class="brand" href="/">ledger<span>flow</span></a>
  <nav aria-label="Main">
    <ul>${
    nav.map(([section, href, label]) =>
      html`<li><a href="${href}"${section === options.section ? html` aria-current="page"` : ""}>${label}</a></li>`
    )
  }</ul>
  </nav>
  <span class="store" title="The ledger this view reads (read-only)">${options.store} · read-only</span>
</header>
<main id="content" tabindex="-1">
${options.body}
</main>
</body>
</html>
`

/** A status as a coloured badge: the words say it, the colour only repeats it. */
export const badge = (text: string, tone: "ok" | "fail" | "warn" | "info" | "quiet") =>
  html`<span class="badge ${tone}">${text}</span>`

export const statusTone = (status: string): "ok" | "fail" | "warn" | "info" | "quiet" =>
  status === "completed"
    ? "ok"
    : status === "failed" || status === "needs_attention"
    ? "fail"
    : status === "running"
    ? "info"
    : "warn"

/** The page for a request the UI cannot answer: what was wrong and where to go instead. */
export const problem = (options: { readonly store: string; readonly title: string; readonly message: string }): Html =>
  page({
    title: options.title,
    section: "none",
    store: options.store,
    body: html`<h1>${options.title}</h1>
<p class="error" role="alert">${options.message}</p>
<p><a href="/">Back to the runs</a></p>`
  })
