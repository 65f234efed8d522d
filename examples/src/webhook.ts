/** A customer's webhook for the demo: a real HTTP server on 127.0.0.1 that answers 503 a few times first. */
import { Effect } from "effect"
import { createServer, type Server } from "node:http"

const listen = (server: Server) =>
  Effect.async<number>((resume) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

export const startWebhook = (options: { readonly failFirst: number }) =>
  Effect.gen(function*() {
    let received = 0
    const server = createServer((req, res) => {
      received++
      req.resume()
      const ok = received > options.failFirst
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" })
      res.end(JSON.stringify({ ok }))
    })
    const port = yield* Effect.acquireRelease(listen(server), () => Effect.sync(() => server.close()))
    return { url: `http://127.0.0.1:${port}/hooks/report`, received: () => received }
  })
