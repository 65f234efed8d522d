#!/usr/bin/env node
// The ledgerflow CLI: the built program when dist exists, else the TypeScript sources via tsx.
import { existsSync } from "node:fs"

const built = new URL("../dist/main.js", import.meta.url)
if (existsSync(built)) {
  await import(built.href)
} else {
  const { register } = await import("tsx/esm/api")
  register()
  await import(new URL("../src/main.ts", import.meta.url).href)
}
