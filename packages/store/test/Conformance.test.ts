import { EventStore } from "@ledgerflow/core"
import { PgStore, SqliteStore } from "@ledgerflow/store"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"
import { freshDatabase } from "../../../test/support/postgres.js"
import { conformance } from "./conformance.js"

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-conformance-"))
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))

conformance("memory", () => EventStore.layerMemory)

conformance("sqlite", () => SqliteStore.layer({ filename: path.join(directory, `${randomUUID()}.db`) }))

// One database for this file; each test gets a store of its own in a fresh Postgres schema of it.
let database = ""
beforeAll(async () => {
  database = await freshDatabase()
})
conformance("postgres", () =>
  Layer.unwrapEffect(Effect.sync(() =>
    PgStore.layer({ url: database, schema: `conformance_${randomUUID().replaceAll("-", "")}`, maxConnections: 4 })
  )))
