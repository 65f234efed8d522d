#!/usr/bin/env node
// Lists every import cycle between the packages' source files and exits 1 if there is one.
// STYLE.md: "imports flow one way, no cycles" — a reader learns the code bottom-up. A type-only cycle
// counts too (`import type`, `typeof import(...)`): it still ties the modules together for a reader.
//
// Usage: node scripts/import-cycles.mjs [root]   (default: the repository root)
// Reads root/packages/*/src/**/*.ts, resolves relative specifiers ("./x.js" → "./x.ts", "./dir" →
// "./dir/index.ts") and ignores package imports. No allowlist: a cycle is fixed, not excused.
//
// One shape is not a cycle: a public module's face and its implementation, the Effect pattern STYLE.md
// prescribes (`CostLedger.ts` declares the types and `export const report = internal.report`;
// `internal/costLedger.ts` and the internal modules it uses import those types back). A public module's
// implementation is the `internal/` modules it reaches through `internal/` modules only; their imports of
// it for types only (`import type`, `import { type X }`) are dropped: face and implementation read as one
// module. A value import back, or a loop through another public module, is a cycle.
//
// Imports are read from TypeScript's syntax tree (typescript is already a dev dependency of the
// workspace), so an import inside a comment or a string is not an edge and every form is seen:
// import, import type, export … from, import(), typeof import(), import x = require().
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

/** Print at most this many cycles; a tangle beyond that is reported by its count. */
const maxPrinted = 200

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."))

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : walk(path)
    return entry.isFile() && entry.name.endsWith(".ts") ? [path] : []
  })

const sourceFiles = () => {
  const packages = join(root, "packages")
  if (!existsSync(packages)) return []
  return readdirSync(packages, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(packages, entry.name, "src"))
    .filter((src) => existsSync(src) && statSync(src).isDirectory())
    .flatMap(walk)
    .sort()
}

/** The file a relative specifier names, if it is one of the files read; undefined otherwise. */
const resolveSpecifier = (from, specifier, known) => {
  const base = resolve(dirname(from), specifier)
  const candidates = [
    base.replace(/\.(m|c)?js$/, ".$1ts"),
    base,
    `${base}.ts`,
    join(base, "index.ts")
  ]
  return candidates.find((candidate) => known.has(candidate))
}

/** The relative specifiers a file imports, each with whether the import is erased (types only). */
const importsOf = (file) => {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found = []
  const add = (node, typeOnly) => {
    if (node !== undefined && ts.isStringLiteralLike(node)) found.push({ specifier: node.text, typeOnly })
  }
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause
      // `import "./x.js"` runs the module; `import { type A, type B }` and `import type …` are erased.
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined &&
        clause.namedBindings !== undefined && ts.isNamedImports(clause.namedBindings) &&
        clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)))
      add(node.moduleSpecifier, typeOnly)
    } else if (ts.isExportDeclaration(node)) {
      const typeOnly = node.isTypeOnly || (node.exportClause !== undefined && ts.isNamedExports(node.exportClause) &&
        node.exportClause.elements.length > 0 && node.exportClause.elements.every((e) => e.isTypeOnly))
      add(node.moduleSpecifier, typeOnly)
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found.filter(({ specifier }) => specifier.startsWith("./") || specifier.startsWith("../"))
}

const files = sourceFiles()
const known = new Set(files)
const isInternal = (file) => file.split(/[\\/]/).includes("internal")

/** file → imported file → whether every import of it is types only */
const edges = new Map(
  files.map((file) => {
    const targets = new Map()
    for (const { specifier, typeOnly } of importsOf(file)) {
      const target = resolveSpecifier(file, specifier, known)
      if (target !== undefined) targets.set(target, (targets.get(target) ?? true) && typeOnly)
    }
    return [file, targets]
  })
)

/** public module → the internal modules it reaches through internal modules only (its implementation) */
const implementation = new Map(
  files.filter((file) => !isInternal(file)).map((face) => {
    const reached = new Set()
    const queue = [...edges.get(face).keys()].filter(isInternal)
    while (queue.length > 0) {
      const next = queue.pop()
      if (reached.has(next)) continue
      reached.add(next)
      queue.push(...[...edges.get(next).keys()].filter(isInternal))
    }
    return [face, reached]
  })
)

/** Whether `from → to` is an implementation's type-only import of its public face. */
const isFaceBackEdge = (from, to, typeOnly) => typeOnly && implementation.get(to)?.has(from) === true

/** @type {Map<string, string[]>} file → the files it imports (sorted, unique), face back edges dropped */
const graph = new Map(
  files.map((file) => [
    file,
    [...edges.get(file)].filter(([to, typeOnly]) => !isFaceBackEdge(file, to, typeOnly)).map(([to]) => to).sort()
  ])
)

// Every elementary cycle exactly once: a cycle is listed from its smallest file (in sorted order), and
// the search from a file only walks files after it. The graphs here are small; the cap bounds a tangle.
const order = new Map(files.map((file, index) => [file, index]))
const cycles = []
let truncated = false
for (const start of files) {
  const startIndex = order.get(start)
  const path = [start]
  const onPath = new Set(path)
  const visit = (node) => {
    for (const next of graph.get(node) ?? []) {
      if (cycles.length >= maxPrinted) {
        truncated = true
        return
      }
      if (next === start) cycles.push([...path, start])
      else if (order.get(next) > startIndex && !onPath.has(next)) {
        path.push(next)
        onPath.add(next)
        visit(next)
        onPath.delete(next)
        path.pop()
      }
    }
  }
  visit(start)
}

const show = (file) => relative(root, file)
if (cycles.length === 0) {
  console.log(`import-cycles: no cycle among ${files.length} source files under ${show(join(root, "packages"))}/*/src`)
  process.exit(0)
}
console.error(`import-cycles: ${truncated ? `more than ${maxPrinted}` : cycles.length} import cycle(s) among packages/*/src:`)
for (const cycle of cycles) console.error(`  ${cycle.map(show).join(" → ")}`)
console.error("Break each cycle (move the shared type down, or pass a function type instead of a class); see STYLE.md \"Imports flow one way\".")
process.exit(1)
