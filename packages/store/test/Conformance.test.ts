import { EventStore } from "@ledgerflow/core"
import { SqliteStore } from "@ledgerflow/store"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { conformance } from "./conformance.js"

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "ledgerflow-conformance-"))
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))

conformance("memory", () => EventStore.layerMemory)

conformance("sqlite", () => SqliteStore.layer({ filename: path.join(directory, `${randomUUID()}.db`) }))
