/** What every measurement shares: fresh temp files, timing (wall and CPU), medians, memory snapshots. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = mkdtempSync(join(tmpdir(), "ledgerflow-bench-"))
let files = 0

/** A path for a new SQLite file that nothing has touched yet. */
export const freshFile = (label: string): string => join(root, `${label}-${++files}.db`)

/** Remove every file the run created. */
export const cleanUp = (): void => rmSync(root, { recursive: true, force: true })

/**
 * Runs made on each measurement's own file before its clock starts, the same way as the timed ones: the
 * WAL has grown to its checkpoint size (the ceiling's 600 warm appends leave it at ~1,000 pages, SQLite's
 * autocheckpoint; the engine's rows write more), statements are prepared, and every row (the ceiling
 * included) is judged on a file in that state. (Measured on fresh files, one machine put the
 * ceiling at 464 µs a step and the store alone at 193: the rows were not comparable.)
 */
export const warmRuns = 60

/** The shared workload: a 10-step pipeline, 200 runs, 16 at a time when concurrent. */
export const workload = { steps: 10, runs: 200, concurrency: 16 } as const

/** A trivial step body's result: a small struct, as a cheap real step would return. */
export const stepOutput = (run: number, step: number) => ({ run, step, ok: true, note: "done" })

/** One timed measurement: `items` (steps, events) in `ms` of wall time and `cpuMs` of process CPU. */
export interface Sample {
  readonly items: number
  readonly ms: number
  readonly cpuMs: number
}

/** Start the clocks; `stop(items)` reads them. CPU is the whole process's (user + system). */
export const startTimer = () => {
  const wall = performance.now()
  const cpu = process.cpuUsage()
  return (items: number): Sample => {
    const used = process.cpuUsage(cpu)
    return { items, ms: performance.now() - wall, cpuMs: (used.user + used.system) / 1000 }
  }
}

export const perSecond = (s: Sample): number => (s.items / s.ms) * 1000

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The sample with the median throughput (so its wall and CPU figures belong together). */
export const medianSample = (samples: ReadonlyArray<Sample>): Sample => {
  const sorted = [...samples].sort((a, b) => perSecond(a) - perSecond(b))
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

export interface Memory {
  readonly rssMb: number
  /** Heap used after two full collections; undefined without `--expose-gc`. */
  readonly heapUsedMb: number | undefined
}

export const memory = (): Memory => {
  // `gc` is defined when node runs with --expose-gc.
  globalThis.gc?.()
  globalThis.gc?.()
  const usage = process.memoryUsage()
  return {
    rssMb: round(usage.rss / 2 ** 20, 1),
    heapUsedMb: globalThis.gc === undefined ? undefined : round(usage.heapUsed / 2 ** 20, 1)
  }
}

export const round = (x: number, digits = 0): number => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
