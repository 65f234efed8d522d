/**
 * The UI's HTTP app on `@effect/platform`'s router: GET pages only (the view is read-only), every failure
 * answered with a page that says what was wrong — 400 for a bad query parameter, 404 for an unknown run or
 * path, 500 when the store cannot be read — never a stack trace.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Engine, type EventStore } from "@ledgerflow/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import { fromError } from "../internal/exit.js"
import * as Assets from "./assets.js"
import type { Html } from "./html.js"
import { problem } from "./layout.js"
import * as CostPage from "./pages/cost.js"
import * as FailuresPage from "./pages/failures.js"
import * as RunPage from "./pages/run.js"
import * as RunsPage from "./pages/runs.js"
import * as Query from "./query.js"

export interface UiService {
  /** The store's path, as the user gave it: every page names the ledger it shows. */
  readonly store: string
  /** The storm breakers of the config's pipelines, or why they are unknown. */
  readonly breakers: Effect.Effect<FailuresPage.Breakers>
  /**
   * The host names a request may address, or undefined for any: a view bound to 127.0.0.1 answers only
   * to local names, so a web page elsewhere cannot read the ledger through DNS rebinding.
   */
  readonly hosts: ReadonlyArray<string> | undefined
}

export class Ui extends Context.Tag("@ledgerflow/cli/Ui")<Ui, UiService>() {}

const headers = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Everything comes from this server; the charts' colours are inline style attributes.
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
}

const htmlResponse = (page: Html, status = 200) =>
  HttpServerResponse.text(page.value, { status, contentType: "text/html; charset=utf-8", headers })

/** An error as the page a person reads: its status, a title, and the message in one line. */
const errorPage = (error: unknown, store: string) => {
  const tag = Predicate.hasProperty(error, "_tag") ? error._tag : undefined
  if (tag === "BadQuery") {
    return htmlResponse(problem({ store, title: "Bad request", message: fromError(error).message }), 400)
  }
  if (tag === "RunNotFound" || tag === "PageNotFound") {
    return htmlResponse(problem({ store, title: "Not found", message: fromError(error).message }), 404)
  }
  return htmlResponse(
    problem({ store, title: "Cannot read the store", message: `${fromError(error).message}; this view reads the store anew on every page: reload once fixed` }),
    500
  )
}

/** Answer with the page `render` makes, or with the error page its failure earns. */
const pageRoute = <E, R>(render: (store: string) => Effect.Effect<Html, E, R>) =>
  Effect.flatMap(Ui, (ui) =>
    render(ui.store).pipe(
      Effect.map((page) => htmlResponse(page)),
      Effect.catchAll((error) => Effect.succeed(errorPage(error, ui.store)))
    ))

const withQuery = <E, R>(
  allowed: ReadonlyArray<string>,
  render: (q: Readonly<Record<string, string>>, store: string) => Effect.Effect<Html, E, R>
) => pageRoute((store) => Effect.flatMap(Query.read(allowed), (q) => render(q, store)))

const asset = (body: string, contentType: string) =>
  Effect.succeed(HttpServerResponse.text(body, { contentType, headers: { ...headers, "cache-control": "max-age=300" } }))

const runsRoute = withQuery(RunsPage.parameters, RunsPage.render)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/", runsRoute),
  HttpRouter.get("/runs", runsRoute),
  HttpRouter.get(
    "/runs/:runId",
    Effect.flatMap(HttpRouter.params, (params) =>
      withQuery([], (_, store) => RunPage.render(params["runId"] ?? "", store)))
  ),
  HttpRouter.get("/cost", withQuery(CostPage.parameters, CostPage.render)),
  HttpRouter.get(
    "/failures",
    Effect.flatMap(Ui, (ui) => withQuery(FailuresPage.parameters, (q, store) => FailuresPage.render(q, store, ui.breakers)))
  ),
  // For the live refresh: has any run changed since the page was rendered?
  HttpRouter.get(
    "/api/changes",
    Effect.gen(function*() {
      const q = yield* Query.read(["since"])
      const since = Number(q["since"])
      if (!/^\d+$/.test(q["since"] ?? "")) {
        return yield* new Query.BadQuery({ message: `"since" must be epoch milliseconds; got "${q["since"] ?? ""}"` })
      }
      const engine = yield* Engine.Engine
      const changed = yield* engine.runs({ since, limit: 1 })
      const now = yield* Clock.currentTimeMillis
      return HttpServerResponse.unsafeJson({ changed: changed.length > 0, now }, { headers })
    }).pipe(
      Effect.catchAll((error) =>
        Effect.succeed(HttpServerResponse.unsafeJson({ error: fromError(error).message }, {
          status: Predicate.isTagged(error, "BadQuery") ? 400 : 500,
          headers
        }))
      )
    )
  ),
  HttpRouter.get("/assets/ledgerflow.css", asset(Assets.css, "text/css; charset=utf-8")),
  HttpRouter.get("/assets/live.js", asset(Assets.liveJs, "text/javascript; charset=utf-8"))
)

/** The whole app: the router, a 404 page for any other path, and the host check. */
export const app: Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  never,
  Ui | Engine.Engine | EventStore.EventStore | HttpServerRequest.HttpServerRequest
> = Effect.gen(function*() {
  const ui = yield* Ui
  const request = yield* HttpServerRequest.HttpServerRequest
  const host = (request.headers["host"] ?? "").replace(/:\d+$/, "").toLowerCase()
  if (ui.hosts !== undefined && !ui.hosts.includes(host)) {
    return htmlResponse(
      problem({
        store: ui.store,
        title: "Forbidden",
        message: `this view answers to ${ui.hosts.join(", ")} only, not to "${host}"; open it by that address`
      }),
      403
    )
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return htmlResponse(problem({ store: ui.store, title: "Read-only", message: `this view is read-only: ${request.method} is not answered` }), 405)
  }
  return yield* router.pipe(
    Effect.catchTag("RouteNotFound", () =>
      Effect.succeed(errorPage(
        new Query.PageNotFound({ message: `there is no page at ${request.url}; the pages are /, /runs/<run>, /cost and /failures` }),
        ui.store
      )))
  )
})
