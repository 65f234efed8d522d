// scripts/import-cycles.mjs (run by `pnpm lint`) on fixture trees written to a temporary folder: the
// script is run as `pnpm lint` runs it, a real `node` child process, and judged by its exit code and output.
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const script = join(dirname(fileURLToPath(import.meta.url)), "..", "scripts", "import-cycles.mjs")

/** A repository root holding `files` (paths relative to the root). */
const fixture = (files: Record<string, string>): string => {
  const root = mkdtempSync(join(tmpdir(), "ledgerflow-cycles-"))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

const check = (root: string) => {
  const result = spawnSync(process.execPath, [script, root], { encoding: "utf8" })
  return { code: result.status, out: `${result.stdout}${result.stderr}` }
}

const src = "packages/core/src"

describe("scripts/import-cycles.mjs", () => {
  it("lists a three-file cycle closed by an `import type`, file by file, and exits 1", () => {
    const { code, out } = check(fixture({
      [`${src}/Step.ts`]: `import { RunContext } from "./RunContext.js"\nexport const step = RunContext\n`,
      [`${src}/RunContext.ts`]: `import type { Runner } from "./internal/runner.js"\nexport const RunContext = 1\nexport type R = Runner\n`,
      [`${src}/internal/runner.ts`]: `import { step } from "../Step.js"\nexport class Runner { s = step }\n`,
      [`${src}/Failure.ts`]: `export const failure = 1\n`
    }))
    expect(code).toBe(1)
    expect(out).toContain("1 import cycle(s)")
    expect(out).toContain(
      "packages/core/src/RunContext.ts → packages/core/src/internal/runner.ts → packages/core/src/Step.ts → packages/core/src/RunContext.ts"
    )
    expect(out).not.toContain("Failure.ts")
  })

  it("exits 0 on a tree whose imports flow one way, whatever the import form", () => {
    const { code, out } = check(fixture({
      [`${src}/Failure.ts`]: `export const failure = 1\n`,
      [`${src}/RetryPolicy.ts`]: `import type { X } from "./x/index.js"\nimport { failure } from "./Failure.js"\nexport const p = failure\nexport type Y = X\n`,
      [`${src}/x/index.ts`]: `export * from "../Failure.js"\nexport type X = typeof import("../Failure.js")\n`,
      [`${src}/Step.ts`]: `import * as RetryPolicy from "./RetryPolicy.js"\nexport const s = RetryPolicy.p\n`,
      // Imports written in a comment or a string are not imports.
      [`${src}/Failure2.ts`]: `// import { s } from "./Step.js"\nexport const text = 'import "./Step.js"'\n`,
      [`packages/store/src/SqliteStore.ts`]: `import { s } from "@ledgerflow/core"\nexport const t = s\n`
    }))
    expect(out).toContain("no cycle among 6 source files")
    expect(code).toBe(0)
  })

  it("sees every import form: export from, import(), typeof import(), a folder's index", () => {
    const forms = [
      `export { b } from "./b.js"`,
      `export const load = () => import("./b.js")`,
      `export type B = typeof import("./b.js")`,
      `import "./b"`,
      `import { b } from "./b/index.js"\nexport const c = b`
    ]
    for (const form of forms) {
      const b = form.includes("/index") ? `${src}/b/index.ts` : `${src}/b.ts`
      const { code, out } = check(fixture({
        [`${src}/a.ts`]: `${form}\n`,
        [b]: `import type { B } from "${form.includes("/index") ? "../a.js" : "./a.js"}"\nexport const b = 1\nexport type A = B\n`
      }))
      expect({ form, code }).toEqual({ form, code: 1 })
      expect(out).toContain("1 import cycle(s)")
    }
  })

  it("a public module and its internal implementation importing its types back are one module; a value import back, or a loop through another public module, is a cycle", () => {
    const face = {
      [`${src}/CostLedger.ts`]: `import * as internal from "./internal/costLedger.js"\nexport interface Row { n: number }\nexport const report = internal.report\n`
    }
    const typesBack = check(fixture({
      ...face,
      [`${src}/internal/costLedger.ts`]: `import { type Row } from "../CostLedger.js"\nexport const report = (r: Row) => r.n\n`
    }))
    expect(typesBack).toEqual({ code: 0, out: expect.stringContaining("no cycle") })

    const valueBack = check(fixture({
      ...face,
      [`${src}/internal/costLedger.ts`]: `import { report as r } from "../CostLedger.js"\nexport const report = () => r\n`
    }))
    expect(valueBack.code).toBe(1)
    expect(valueBack.out).toContain("packages/core/src/CostLedger.ts → packages/core/src/internal/costLedger.ts → packages/core/src/CostLedger.ts")

    // The implementation may be several internal modules, each importing the face's types.
    const split = check(fixture({
      ...face,
      [`${src}/internal/costLedger.ts`]: `import { fold } from "./costFold.js"\nexport const report = fold\n`,
      [`${src}/internal/costFold.ts`]: `import type { Row } from "../CostLedger.js"\nexport const fold = (r: Row) => r.n\n`
    }))
    expect(split).toEqual({ code: 0, out: expect.stringContaining("no cycle") })

    // A loop through another public module is a cycle.
    const longer = check(fixture({
      ...face,
      [`${src}/internal/costLedger.ts`]: `import type { Row } from "../Event.js"\nexport const report = (r: Row) => r\n`,
      [`${src}/Event.ts`]: `import type { Row } from "./CostLedger.js"\nexport type { Row }\n`
    }))
    expect(longer.code).toBe(1)
    expect(longer.out).toContain("packages/core/src/CostLedger.ts → packages/core/src/internal/costLedger.ts → packages/core/src/Event.ts → packages/core/src/CostLedger.ts")
  })

  it("lists each cycle of a tangle once", () => {
    // a ⇄ b and a → b → c → a: two elementary cycles sharing an edge.
    const { code, out } = check(fixture({
      [`${src}/a.ts`]: `import "./b.js"\n`,
      [`${src}/b.ts`]: `import "./a.js"\nimport "./c.js"\n`,
      [`${src}/c.ts`]: `import "./a.js"\n`
    }))
    expect(code).toBe(1)
    expect(out).toContain("2 import cycle(s)")
    expect(out.split("\n").filter((line) => line.includes(" → "))).toEqual([
      "  packages/core/src/a.ts → packages/core/src/b.ts → packages/core/src/a.ts",
      "  packages/core/src/a.ts → packages/core/src/b.ts → packages/core/src/c.ts → packages/core/src/a.ts"
    ])
  })
})
