/**
 * `pnpm demo`, then `ledgerflow ui`, in a real headless Chromium: what a user sees after the demo. The
 * browser is the one inside the `@sparticuz/chromium` npm package (nothing is downloaded); if it cannot
 * start, these tests fail and say why. Screenshots go to test-artifacts/ui/ (gitignored).
 */
import chromium from "@sparticuz/chromium"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Engine, Pipeline, Step } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { Effect, Layer, Schema } from "effect"
import { spawn } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, chromium as playwright, type Page } from "playwright-core"
import { ledgerflow } from "../../packages/cli/test/fixtures/cli.js"
import { type Served, serveUi } from "../../packages/cli/test/fixtures/ui.js"

const examples = fileURLToPath(new URL("..", import.meta.url))
const artifacts = fileURLToPath(new URL("../../test-artifacts/ui/", import.meta.url))

/**
 * The demo as `pnpm demo` runs it, in a scratch folder holding the examples' config (as examples/ does).
 * Asynchronously: a blocked worker misses vitest's heartbeats.
 */
const runDemo = (): Promise<{ readonly dir: string; readonly output: string }> => {
  const dir = mkdtempSync(join(tmpdir(), "ledgerflow-ui-demo-"))
  symlinkSync(join(examples, "src"), join(dir, "src"))
  symlinkSync(join(examples, "node_modules"), join(dir, "node_modules"))
  copyFileSync(join(examples, "ledgerflow.config.ts"), join(dir, "ledgerflow.config.ts"))
  const env = { ...process.env }
  delete env["ANTHROPIC_API_KEY"]
  return new Promise((resolve, reject) => {
    const demo = spawn(process.execPath, ["--import", "tsx", join(examples, "src", "demo.ts")], { cwd: dir, env })
    let output = ""
    demo.stdout.setEncoding("utf8").on("data", (d: string) => (output += d))
    demo.stderr.setEncoding("utf8").on("data", (d: string) => (output += d))
    demo.on("error", reject)
    demo.on("close", (code) => (code === 0 ? resolve({ dir, output }) : reject(new Error(`the demo failed (${code}): ${output}`))))
  })
}

/** Chromium from the npm package, or a failure that says why it did not start. */
const launch = async (): Promise<Browser> => {
  let executablePath: string
  try {
    executablePath = await chromium.executablePath()
  } catch (error) {
    throw new Error(`@sparticuz/chromium could not unpack its browser: ${String(error)}`)
  }
  try {
    // The package's flags are tuned for AWS Lambda; one process per page (no --single-process) is steadier here.
    const args = chromium.args.filter((a) => !["--single-process", "--no-zygote", "--disable-web-security", "--allow-running-insecure-content"].includes(a))
    return await playwright.launch({ executablePath, args, headless: true, timeout: 60_000 })
  } catch (error) {
    throw new Error(`headless Chromium (${executablePath}) did not start; on Debian it needs libnss3 and friends: ${String(error)}`)
  }
}

/** A one-step pipeline, started into the demo's store while the page is open. */
const ping = Pipeline.make({
  name: "ping",
  version: 1,
  input: Schema.String,
  output: Schema.String,
  run: Step.make({ name: "echo", input: Schema.String, output: Schema.String, run: (s) => Effect.succeed(s) })
})

const shoot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true })

describe("ledgerflow ui after the demo, in headless Chromium", () => {
  let dir: string
  let demoOutput: string
  let served: Served
  let browser: Browser

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true })
    const demo = await runDemo()
    dir = demo.dir
    demoOutput = demo.output
    served = await serveUi(["--db", ".ledgerflow/ledger.db"], { cwd: dir })
    browser = await launch()
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await served?.stop()
  })

  it("the demo ends by telling the user to run `ledgerflow ui`", () => {
    expect(demoOutput.trimEnd().split("\n").slice(-2)).toEqual([
      "Or see it all in your browser — runs, each run's timeline, cost, failures:",
      "  npx ledgerflow ui --open"
    ])
  })

  it("runs → the ad report's run: the webhook's two failed attempts and the served summary on its timeline", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(served.url)
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Runs")
    await shoot(page, "1-runs")
    const row = page.locator("tbody tr", { hasText: "acme-2026-10" })
    expect(await row.count()).toBe(1)
    await row.getByRole("link").click()
    await page.waitForURL(/\/runs\/run_/)
    const timeline = page.locator("svg.timeline")
    await timeline.waitFor()
    const failed = timeline.locator('[data-step^="webhook"][data-outcome="failed"]')
    expect(await failed.count()).toBe(2)
    for (const label of await failed.evaluateAll((els) => els.map((e) => e.getAttribute("aria-label") ?? ""))) {
      expect(label).toMatch(/^webhook#\d+: ✗ attempt \d failed, transient: HTTP 503 .*; (retry in \d+ms|gave up: .+)$/)
    }
    const served_ = timeline.locator('[data-step^="summarize"][data-outcome="served"]')
    expect(await served_.count()).toBeGreaterThanOrEqual(1)
    expect(await served_.first().isVisible()).toBe(true)
    expect(await timeline.locator('[data-step^="webhook"][data-outcome="completed"]').count()).toBe(1)
    // The rolled-back file and row of the first start are on the timeline too.
    expect(await timeline.locator('[data-outcome="compensated"]').count()).toBe(2)
    expect(await page.locator(".commands").textContent()).toContain("ledgerflow replay")
    await shoot(page, "2-run-ad-report")
    // The JSON is there on demand.
    const details = page.locator("details", { hasText: "JSON" }).first()
    await details.locator("summary").click()
    expect(await details.locator("pre").textContent()).toMatch(/input hash|output/)
    await page.close()
  })

  it("cost: the summarizer's share, as `ledgerflow cost` reports it", async () => {
    const cli = await ledgerflow(["cost", "--json", "--db", ".ledgerflow/ledger.db"], { cwd: dir })
    const rows = cli.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
    const summarize = rows.find((r) => r.record === "row" && r.group === "ad-report/summarize")
    expect(summarize).toBeDefined()
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(served.url)
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Cost" }).click()
    await page.waitForURL(/\/cost$/)
    const row = page.locator('#cost-table tr[data-group="ad-report/summarize"]')
    const cells = await row.locator("td").allTextContents()
    // `--json` money is an exact decimal string of dollars; the page rounds it to cents.
    expect(cells[0]).toBe(`$${Number(summarize.spent.usd).toFixed(2)}`)
    expect(cells[3]).toBe(`${Math.round(summarize.share.inputTokens * 100)}%`)
    expect(await page.locator("#top-share").textContent()).toContain("ad-report/summarize")
    expect(await page.locator("svg.chart title", { hasText: "ad-report/summarize" }).count()).toBeGreaterThan(0)
    await shoot(page, "3-cost")
    await page.close()
  })

  it("failures: the loop guard's failure ×1 and each pipeline's breaker; keyboard reaches every link", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(`${served.url}/failures`)
    expect(await page.locator("section.group").first().textContent()).toMatch(/×1.*deterministic.*agent-loop/s)
    expect(await page.locator("#breakers tr[data-pipeline]").count()).toBe(3)
    await shoot(page, "4-failures")
    // Tab from the top: the skip link, the brand, then the navigation.
    const focused: Array<string> = []
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press("Tab")
      focused.push((await page.locator(":focus").textContent())?.trim() ?? "")
    }
    expect(focused).toEqual(expect.arrayContaining(["Skip to content", "Runs", "Cost", "Failures"]))
    await page.close()
  })

  it("the runs page shows a run started after it was opened, without a reload", async () => {
    const page = await browser.newPage()
    await page.goto(served.url)
    expect(await page.locator(".live").getAttribute("data-state")).toBe("on")
    const marker = await page.evaluate("window.__notReloaded = true")
    expect(marker).toBe(true)
    await Effect.runPromise(Engine.run(ping, "hello", { key: "ping-live" }).pipe(
      Effect.provide(Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: join(dir, ".ledgerflow", "ledger.db") })))),
      Effect.scoped
    ))
    await page.locator("tbody tr", { hasText: "ping-live" }).waitFor({ timeout: 30_000 })
    // The same document: the script swapped the list in, the page was not reloaded.
    expect(await page.evaluate("window.__notReloaded")).toBe(true)
    await page.close()
  })

  it("works without JavaScript: the pages are rendered by the server", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false })
    const page = await context.newPage()
    await page.goto(`${served.url}/?pipeline=ad-report`)
    await page.locator("tbody tr a").first().click()
    await page.waitForURL(/\/runs\/run_/)
    expect(await page.locator('svg.timeline [data-step^="webhook"][data-outcome="failed"]').count()).toBe(2)
    expect(await page.locator('svg.timeline [data-step^="summarize"][data-outcome="served"]').count()).toBe(1)
    await context.close()
  })
})
