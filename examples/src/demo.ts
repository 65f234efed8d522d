/**
 * The demo: the three incidents with real numbers, on a real SQLite file (`.ledgerflow/ledger.db`), against
 * the local Claude stand-in (or the real API when ANTHROPIC_API_KEY is set), using the `ledgerflow` CLI
 * for the after-the-fix steps. Leaves the store behind for you to explore.
 */
import { Anthropic, CostLedger, Engine, Failure } from "@ledgerflow/core"
import { AnthropicStandIn } from "@ledgerflow/core/testing"
import { SqliteStore } from "@ledgerflow/store"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { mkdirSync, rmSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { adReport } from "./adReport.js"
import { agentLoop } from "./agentLoop.js"
import { AppDbLive, WebhookLive } from "./app.js"
import { createBatchTable, migrateBatchTable, naiveBatch, retryStorm } from "./retryStorm.js"
import { startWebhook } from "./webhook.js"

const db = ".ledgerflow/ledger.db"
const appDb = ".ledgerflow/app.db"
/** The `ledgerflow` binary this package depends on, as `pnpm exec ledgerflow` would find it. */
const cliBin = fileURLToPath(new URL("../node_modules/@ledgerflow/cli/bin/ledgerflow.js", import.meta.url))

const say = (text = "") => Effect.sync(() => console.log(text))
const heading = (text: string) => say(`\n━━ ${text} ${"━".repeat(Math.max(0, 72 - text.length))}`)

/** Run the real `ledgerflow` binary, as a user would, and show its output. */
const ledgerflow = (...args: Array<string>) =>
  Effect.gen(function*() {
    yield* say(`$ ledgerflow ${args.join(" ")}`)
    const result = spawnSync(process.execPath, [cliBin, "--db", db, ...args], { encoding: "utf8", env: process.env })
    const out = `${result.stdout}${result.stderr}`.trimEnd()
    yield* say(out.split("\n").map((l) => `  ${l}`).join("\n"))
  })

const demo = Effect.gen(function*() {
  const standIn = yield* AnthropicStandIn.AnthropicStandIn
  const calls = Effect.map(standIn.meter, (m) => m.billedCalls)
  const { client } = yield* Anthropic.AnthropicClient
  const app = new Database(appDb)
  createBatchTable(app)

  yield* heading("1. The retry storm, without ledgerflow")
  yield* say("A batch asks Claude 5 questions, then writes to batch_results — whose `score` column does not")
  yield* say("exist yet. The task queue sees a 500 and redelivers the job 21 times.")
  const before = yield* calls
  let lastError = ""
  for (let delivery = 1; delivery <= 21; delivery++) {
    yield* Effect.promise(() => naiveBatch(client, app, "2026-11-25").catch((e: Error) => void (lastError = e.message)))
  }
  const naive = (yield* calls) - before
  yield* say(`21 deliveries → ${naive} Claude calls billed, every one failing with: ${lastError}`)

  yield* heading("2. The same storm, with ledgerflow")
  const withLedger = yield* calls
  let runId = ""
  for (let delivery = 1; delivery <= 21; delivery++) {
    const outcome = yield* Effect.either(Engine.run(retryStorm, { batch: "2026-11-25" }, { key: "batch-2026-11-25" }))
    if (outcome._tag === "Left" && delivery === 1) {
      const failure = outcome.left
      yield* say(`delivery 1 failed ${Failure.isFailure(failure) ? Failure.classification(failure) : failure._tag}: ${"reason" in failure ? failure.reason : failure.message}`)
    }
  }
  const [stormRun] = yield* Engine.runs({ pipeline: "retry-storm" })
  runId = stormRun!.runId
  yield* say(`21 deliveries → ${(yield* calls) - withLedger} Claude calls billed (1 execution; 20 deliveries got the stored failure at once)`)
  // The story told by the ledger itself: the run's delivery count, and what the 20 redeliveries did not pay.
  const ledger = yield* CostLedger.report({ by: "run", runId })
  yield* say(
    `the ledger: ${stormRun!.deliveries} deliveries, 1 execution, $${
      ledger.totals.saved.usd.toFixed(4)
    } saved; $${ledger.totals.held.usd.toFixed(4)} held by the failed run until it is resumed`
  )

  yield* heading("3. Fix the schema, resume the run: 0 new tokens")
  migrateBatchTable(app)
  yield* say("ALTER TABLE batch_results ADD COLUMN score INTEGER")
  const beforeResume = yield* calls
  yield* ledgerflow("resume", runId.slice(0, 16), "--config", "ledgerflow.config.ts")
  yield* say(`Claude calls billed by the resume: ${(yield* calls) - beforeResume} (the 5 answers were served from the log)`)

  yield* heading("4. The ad report: a webhook 503 after the paid summary")
  yield* say("fetch → Claude summary (~8K input tokens) → write file → insert row → webhook (answers 503 twice)")
  const beforeReport = yield* calls
  const first = yield* Effect.either(Engine.run(adReport, { account: "acme", month: "2026-10" }, { key: "acme-2026-10" }))
  if (first._tag === "Left") yield* say(`first start: ${first.left._tag} — the file and the row are rolled back, the summary is kept`)
  const second = yield* Engine.run(adReport, { account: "acme", month: "2026-10" }, { key: "acme-2026-10" })
  yield* say(`second start: delivered ${second.file}; Claude calls billed for both starts: ${(yield* calls) - beforeReport}`)

  yield* heading("5. Bots answering each other, stopped by the loop guard")
  const loop = yield* Effect.either(Engine.run(agentLoop, { thread: "support-4711", opening: "customer: my invoice is wrong" }))
  if (loop._tag === "Left" && "reason" in loop.left) yield* say(loop.left.reason)

  yield* heading("Where the money went")
  yield* ledgerflow("cost", "--by", "step")
  yield* ledgerflow("failures")

  yield* heading("Explore")
  yield* say(`The store is examples/${db}. From examples/, try:`)
  for (const cmd of ["runs", `show ${runId.slice(0, 16)}`, `replay ${runId.slice(0, 16)}`, "cost --by model", "export | head -3"]) {
    yield* say(`  npx ledgerflow ${cmd}`)
  }
  yield* say("Or see it all in your browser — runs, each run's timeline, cost, failures:")
  yield* say("  npx ledgerflow ui --open")
  app.close()
})

const main = Effect.gen(function*() {
  rmSync(".ledgerflow", { recursive: true, force: true })
  mkdirSync(".ledgerflow", { recursive: true })
  const standIn = yield* AnthropicStandIn.make()
  const usingRealApi = process.env["ANTHROPIC_API_KEY"] !== undefined && process.env["ANTHROPIC_API_KEY"] !== ""
  if (!usingRealApi) process.env["ANTHROPIC_BASE_URL"] = standIn.url
  const webhook = yield* startWebhook({ failFirst: 2 })
  process.env["LEDGERFLOW_WEBHOOK_URL"] = webhook.url
  process.env["LEDGERFLOW_APP_DB"] = appDb
  yield* say(`ledgerflow demo — Claude: ${usingRealApi ? "the real API (ANTHROPIC_API_KEY is set)" : `the local stand-in at ${standIn.url}`}`)
  const layer = Layer.mergeAll(
    Engine.layer().pipe(Layer.provideMerge(SqliteStore.layer({ filename: db }))),
    Anthropic.layer(),
    AppDbLive,
    WebhookLive,
    Layer.succeed(AnthropicStandIn.AnthropicStandIn, standIn)
  )
  yield* Effect.provide(demo, layer)
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(`demo failed: ${error}`)
  process.exit(1)
})
