#!/usr/bin/env node
// The Anthropic stand-in as a process: the built module when dist exists, else the TypeScript source via tsx.
import { existsSync } from "node:fs"

const built = new URL("../dist/testing/standinMain.js", import.meta.url)
if (existsSync(built)) {
  await import(built.href)
} else {
  const { register } = await import("tsx/esm/api")
  register()
  await import(new URL("../src/testing/standinMain.ts", import.meta.url).href)
}
