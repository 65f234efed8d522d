/**
 * `ledgerflow ui` over HTTP: the built binary serving a real SQLite store that the library prepared (the
 * CLI tests' fixtures), every route checked for its status and content, and the numbers against the
 * commands' own `--json`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { join } from "node:path"
import { usd } from "../src/commands/cost.js"
import { ledgerflow, ndjson, tempDir, uniquePrefix } from "./fixtures/cli.js"
import { allIds, type Prepared, prepare } from "./fixtures/prepare.js"
import { type Served, serveUi } from "./fixtures/ui.js"

let db: string
let prepared: Prepared
let served: Served

beforeAll(async () => {
  const dir = tempDir()
  db = join(dir, "ledger.db")
  prepared = await prepare({ db, effects: join(dir, "effects.log") })
  served = await serveUi(["--db", db])
})

afterAll(async () => {
  await served?.stop()
})

const get = async (path: string, init?: RequestInit) => {
  const response = await fetch(`${served.url}${path}`, init)
  return { status: response.status, type: response.headers.get("content-type") ?? "", body: await response.text() }
}

/** The run ids a page links to, in page order, once each. */
const linkedRuns = (body: string) => [...new Set([...body.matchAll(/href="\/runs\/(run_[0-9a-z]+)"/g)].map((m) => m[1]!))]

/** The text of the error a problem page shows. */
const problem = (body: string) => /<p class="error" role="alert">([^<]*)<\/p>/.exec(body)?.[1]?.replaceAll("&quot;", "\"")

describe("ledgerflow ui: the runs page", () => {
  it("lists every run newest first, as `ledgerflow runs`, each linking to its page", async () => {
    const page = await get("/")
    expect(page.status).toBe(200)
    expect(page.type).toContain("text/html")
    const rows = ndjson((await ledgerflow(["--db", db, "runs", "--json", "--limit", "0"])).stdout)
    const cli = rows.map((r) => r["runId"])
    expect(linkedRuns(page.body)).toEqual(cli)
    // Each run's deliveries, as the command counts them, in the table's Deliveries column.
    expect(page.body).toContain(`<th scope="col" class="num">Deliveries</th>`)
    for (const row of rows) {
      const cells = new RegExp(`<a href="/runs/${String(row["runId"])}"[^]*?</tr>`).exec(page.body)?.[0] ?? ""
      expect([...cells.matchAll(/<td class="num">([^<]*)<\/td>/g)][0]?.[1]).toBe(String(row["deliveries"]))
    }
    expect(new Set(cli)).toEqual(new Set(allIds(prepared)))
    expect(page.body).toContain("<h1>Runs</h1>")
    // While the page is open it asks for changes: it carries the time it was rendered.
    expect(page.body).toMatch(/<body data-live-since="\d+">/)
  })

  it("filters by status, pipeline, key and since, as the command's flags do", async () => {
    expect(linkedRuns((await get("/?status=completed")).body)).toEqual([prepared.divergent, prepared.flaky])
    expect(linkedRuns((await get("/?pipeline=storm")).body)).toEqual([...prepared.storm].reverse())
    expect(linkedRuns((await get("/?key=acme")).body)).toEqual([prepared.report])
    expect(linkedRuns((await get("/?since=1d&pipeline=guarded")).body)).toEqual([...prepared.guarded].reverse())
    const none = await get("/?since=2999-01-01")
    expect(none.status).toBe(200)
    expect(none.body).toContain("No runs match.")
    // Blank fields, as the filter form submits them, filter nothing.
    expect(linkedRuns((await get("/?status=&pipeline=&key=&since=")).body).length).toBe(allIds(prepared).length)
  })

  it("pages through the runs, newest first, with links to the older and newer pages", async () => {
    const all = linkedRuns((await get("/")).body)
    const first = await get("/?limit=10")
    expect(linkedRuns(first.body)).toEqual(all.slice(0, 10))
    expect(first.body).toContain(`href="/?limit=10&amp;page=2" rel="next"`)
    expect(first.body).not.toContain(`rel="prev"`)
    const last = await get("/?limit=10&page=3")
    expect(linkedRuns(last.body)).toEqual(all.slice(20))
    expect(last.body).toContain(`href="/?limit=10&amp;page=2" rel="prev"`)
    expect(last.body).not.toContain(`rel="next"`)
    expect((await get("/?limit=10&page=9")).body).toContain("No runs on page 9.")
  })

  it("answers a bad query parameter with 400 and what was wrong", async () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["/?status=broken", `"status" must be one of running, completed, failed`],
      ["/?since=yesterday", `"since" takes an ISO date (2025-01-31, 2025-01-31T12:00Z) or a duration back from now (30m, 2h, 7d); got "yesterday"`],
      ["/?page=0", `"page" must be a whole number from 1 to 100000; got "0"`],
      ["/?limit=ten", `"limit" must be a whole number from 1 to 1000; got "ten"`],
      ["/?colour=red", `this page takes no parameter "colour"; it takes "status", "pipeline", "key", "since", "limit", "page"`],
      ["/?status=failed&status=completed", `"status" is given 2 times; give it once`],
      ["/cost?by=colour", `"by" must be one of step, model, pipeline, key, run; got "colour"`],
      ["/failures?since=soon", `"since" takes an ISO date`],
      [`/runs/${prepared.flaky}?verbose=1`, `this page takes no parameter "verbose"`]
    ]
    for (const [path, message] of cases) {
      const page = await get(path)
      expect(page.status, path).toBe(400)
      expect(page.type).toContain("text/html")
      expect(problem(page.body), path).toContain(message)
    }
  })
})

describe("ledgerflow ui: a run's page", () => {
  it("draws each attempt on the timeline: two transient failures, then the completion", async () => {
    const page = await get(`/runs/${prepared.flaky}`)
    expect(page.status).toBe(200)
    const failed = [...page.body.matchAll(/data-step="call-model#0" data-outcome="failed" data-classification="(\w+)"/g)]
    expect(failed.map((m) => m[1])).toEqual(["transient", "transient"])
    // Each mark says what `ledgerflow show` says of its event.
    expect(page.body).toMatch(/aria-label="call-model#0: ✗ attempt 1 failed, transient: HTTP 503 overloaded; retry in \d+ms; tokens 500 in \/ 0 out \(claude-test\)"/)
    expect(page.body.match(/data-step="call-model#0" data-outcome="completed"/g)?.length).toBe(1)
    expect(page.body.match(/<g class="retry" data-step="call-model#0">/g)?.length).toBe(2)
    // The step's table row: 3 attempts, 2 failed, every attempt's input tokens.
    expect(page.body).toMatch(/<tr data-step="call-model#0">.*<td class="num">3<\/td><td class="num">2<\/td><td class="num">1,500<\/td>/s)
    // A completed run: nothing to resume or roll back; replay and show remain.
    expect(page.body).not.toContain("ledgerflow resume")
    expect(page.body).toContain(`ledgerflow replay ${prepared.flaky}`)
    // A finished run does not refresh itself.
    expect(page.body).toMatch(/<body>/)
  })

  it("shows a rolled-back report's compensation, its failure, and the commands to resume it", async () => {
    const page = await get(`/runs/${prepared.report}`)
    expect(page.status).toBe(200)
    expect(page.body).toContain(`data-step="write-file#0" data-outcome="compensated"`)
    expect(page.body).toMatch(/data-step="deliver#0" data-outcome="failed" data-classification="deterministic"/)
    expect(page.body).toContain("no such column: region")
    const cli = JSON.parse((await ledgerflow(["--db", db, "show", prepared.report, "--json"])).stdout)
    expect(cli.run.status).toBe("rolled_back")
    expect(page.body).toContain(`">rolled_back (deterministic)</span>`)
    // Rolled back already: it can be resumed after the fix, not rolled back again.
    expect(page.body).toContain(`<pre>ledgerflow resume ${prepared.report}</pre>`)
    expect(page.body).not.toContain("ledgerflow rollback")
    // The output JSON on demand, escaped.
    expect(page.body).toMatch(/<details id="ev-\d+"><summary>JSON<\/summary><pre>input hash [0-9a-f]+\noutput &quot;4000 impressions&quot;<\/pre>/)
  })

  it("finds a run by a unique prefix of its id, like the commands", async () => {
    const prefix = uniquePrefix(prepared.divergent, allIds(prepared))
    const page = await get(`/runs/${prefix}`)
    expect(page.status).toBe(200)
    expect(page.body).toContain(`<title>Run ${prepared.divergent} · ledgerflow</title>`)
  })

  it("answers a run id that does not exist with a 404 page saying so", async () => {
    const page = await get("/runs/run_doesnotexist")
    expect(page.status).toBe(404)
    expect(page.body).toContain("<h1>Not found</h1>")
    expect(problem(page.body)).toBe("no run has the id run_doesnotexist; list runs with `ledgerflow runs`")
    const ambiguous = await get("/runs/run_")
    expect(ambiguous.status).toBe(404)
    expect(problem(ambiguous.body)).toBe("run_ is the prefix of several runs; type more of the id")
  })
})

describe("ledgerflow ui: cost", () => {
  const cells = (body: string, group: string) => {
    const row = new RegExp(`<tr data-group="${group}">(.*?)</tr>`).exec(body)?.[1] ?? ""
    return [...row.matchAll(/<td class="num[^"]*">([^<]*)<\/td>/g)].map((m) => m[1])
  }

  it("shows the numbers of `ledgerflow cost`, row by row, for each grouping", async () => {
    for (const by of ["step", "key"] as const) {
      const page = await get(`/cost?by=${by}`)
      expect(page.status).toBe(200)
      const cli = ndjson((await ledgerflow(["--db", db, "cost", "--by", by, "--json"])).stdout)
      const rows = cli.filter((r) => r["record"] === "row")
      expect(rows.length).toBeGreaterThan(0)
      for (const row of rows) {
        const spent = row["spent"] as { usd: number; inputTokens: number; outputTokens: number }
        const share = row["share"] as { inputTokens: number }
        const got = cells(page.body, String(row["group"]))
        // Spent, in and out tokens, share, then saved, held and wasted: the command's money, to the cent.
        expect(got.slice(4), `${by} ${String(row["group"])}`).toEqual(
          (["saved", "held", "wasted"] as const).map((m) => usd(Number((row[m] as { usd: string }).usd)))
        )
        expect(got.slice(1, 4), `${by} ${String(row["group"])}`).toEqual([
          spent.inputTokens.toLocaleString("en-US"),
          spent.outputTokens.toLocaleString("en-US"),
          `${Math.round(share.inputTokens * 100)}%`
        ])
      }
    }
  })

  it("names the biggest share, draws the charts, and reports an empty period plainly", async () => {
    const page = await get("/cost")
    expect(page.body).toMatch(/<p class="panel" id="top-share"><strong>report\/summarize<\/strong>: \d+% of input tokens/)
    expect(page.body).toContain(`<svg class="chart"`)
    expect(page.body).toContain("Unpriced models (tokens counted, dollars not): claude-test.")
    const empty = await get("/cost?since=2999-01-01")
    expect(empty.status).toBe(200)
    expect(empty.body).toContain("No usage recorded since 2999-01-01T00:00:00Z.")
  })
})

describe("ledgerflow ui: failures", () => {
  it("groups the 21 alike failures as ×21 and shows each pipeline's breaker from the config", async () => {
    const page = await get("/failures")
    expect(page.status).toBe(200)
    expect(page.body).toMatch(/<span class="count">×21<\/span>.*storm@1/)
    const breaker = (pipeline: string) =>
      new RegExp(`<tr data-pipeline="${pipeline}">.*?<span class="badge \\w+">(\\w+)</span>`).exec(page.body)?.[1]
    expect(breaker("guarded")).toBe("open")
    expect(breaker("storm")).toBe("off")
    expect(breaker("report")).toBe("closed")
    const one = await get("/failures?pipeline=guarded")
    expect(one.body).toMatch(/<span class="count">×2<\/span>/)
    expect(one.body.match(/<section class="group"/g)?.length).toBe(1)
  })

  it("says why the breakers are unknown when no config is at hand", async () => {
    const elsewhere = await serveUi(["--db", db], { cwd: tempDir() })
    try {
      const body = await (await fetch(`${elsewhere.url}/failures`)).text()
      expect(body).toContain("there is no ./ledgerflow.config.ts in the folder it was started in")
      expect(body).toMatch(/<span class="count">×21<\/span>/)
    } finally {
      await elsewhere.stop()
    }
  })
})

describe("ledgerflow ui: the server", () => {
  it("tells the live refresh whether a run changed since a time", async () => {
    expect(JSON.parse((await get("/api/changes?since=0")).body)).toMatchObject({ changed: true })
    expect(JSON.parse((await get(`/api/changes?since=${Date.now() + 60_000}`)).body)).toMatchObject({ changed: false })
    const bad = await get("/api/changes?since=soon")
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body)).toEqual({ error: `"since" must be epoch milliseconds; got "soon"` })
  })

  it("serves its stylesheet and script from the package", async () => {
    const css = await get("/assets/ledgerflow.css")
    expect(css.status).toBe(200)
    expect(css.type).toContain("text/css")
    const js = await get("/assets/live.js")
    expect(js.status).toBe(200)
    expect(js.type).toContain("text/javascript")
    expect(js.body).toContain("/api/changes")
  })

  it("answers an unknown path with 404, a write with 405, and another host name with 403", async () => {
    const missing = await get("/nowhere")
    expect(missing.status).toBe(404)
    expect(problem(missing.body)).toContain("there is no page at /nowhere")
    expect((await get("/", { method: "POST" })).status).toBe(405)
    // A page elsewhere that rebinds its name to 127.0.0.1 must not read the ledger.
    const { request } = await import("node:http")
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${served.url}/`, { headers: { host: "attacker.example" } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.end()
    })
    expect(status).toBe(403)
  })

  it("listens on 127.0.0.1 by default; another host only with --host, and says so", async () => {
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(served.output().stderr).toBe("")
    const other = await serveUi(["--db", db, "--host", "127.0.0.2"])
    try {
      expect(other.url).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/)
      await new Promise((resolve) => other.child.stderr!.once("data", resolve))
      expect(other.output().stderr).toContain("note: serving on 127.0.0.2 because --host says so")
    } finally {
      await other.stop()
    }
  })

  it("refuses a port in use, and a store that does not exist, in one line with exit 2", async () => {
    const port = new URL(served.url).port
    const busy = await ledgerflow(["--db", db, "ui", "--port", port])
    expect(busy.code).toBe(2)
    expect(busy.stderr.trim()).toBe(
      `error: cannot serve on 127.0.0.1:${port}: the port is in use; pass another --port (--port 0 takes any free one)`
    )
    const none = await ledgerflow(["--db", join(tempDir(), "none.db"), "ui", "--port", "0"])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/^error: no ledgerflow store at .*none\.db \(given with --db\)/)
  })
})
