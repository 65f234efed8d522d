#!/usr/bin/env node
// The ledgerflow CLI. An installed package runs its built `dist`. A clone of the repository where some
// `dist` is missing (after `pnpm install` alone) runs the TypeScript sources through tsx, resolving the
// @ledgerflow packages by their "source" export condition (src/*.ts), so that no build is needed first.
import { existsSync } from "node:fs"
import { register } from "node:module"

const built = new URL("../dist/main.js", import.meta.url)
const source = new URL("../src/main.ts", import.meta.url)

/** A module that cannot be found: in a clone, a package that is not built yet. */
const notFound = (error) =>
  error !== null && typeof error === "object" && (error.code === "ERR_MODULE_NOT_FOUND" || error.code === "MODULE_NOT_FOUND")

const fromSource = async () => {
  // Registered first, so it runs after tsx's resolver: every import prefers the "source" condition.
  register(
    "data:text/javascript," +
      encodeURIComponent(
        "export const resolve = (specifier, context, next) => " +
          "next(specifier, { ...context, conditions: ['source', ...context.conditions] })"
      )
  )
  const tsx = await import("tsx/esm/api")
  tsx.register()
  await import(source.href)
}

try {
  if (existsSync(built)) {
    try {
      // A failed import links nothing and runs nothing, so falling back to the sources is safe.
      await import(built.href)
    } catch (error) {
      if (!notFound(error) || !existsSync(source)) throw error
      await fromSource()
    }
  } else {
    await fromSource()
  }
} catch (error) {
  if (!notFound(error)) throw error
  // One line, not a stack trace: what is missing and what to do.
  const what = String(error.message).split("\n")[0]
  process.stderr.write(
    `error: ledgerflow cannot start: ${what}\n` +
      "Install the dependencies (`pnpm install`); in a clone of the ledgerflow repository, `pnpm build` builds every package.\n"
  )
  process.exitCode = 2
}
