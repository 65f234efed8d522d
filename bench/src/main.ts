/**
 * `pnpm bench`: every measurement in one process, each figure a ratio to a reference measured in the same
 * run (the raw better-sqlite3 ceiling; bare row iteration for replay). Prints a table, writes
 * `bench/results/latest.json`. Not a test: nothing here fails the build.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, loadavg } from "node:os"
import * as Ceiling from "./ceiling.js"
import * as Ledgerflow from "./ledgerflow.js"
import * as MemoryBench from "./memory.js"
import * as Operations from "./operations.js"
import * as Peer from "./peer.js"
import * as Replay from "./replay.js"
import { cleanUp, memory, medianSample, perSecond, round, type Sample, startTimer, workload } from "./support.js"

const repetitions = 5
const peerRuns = { sequentialRuns: 20, concurrentRuns: 48 }
const memoryCheckpoints = [200, 1000, 2000]

/** A figure as reported: throughput, its ratio to the reference, per-item wall and CPU time. */
interface Figure {
  readonly perSec: number
  readonly ratio: number
  readonly wallUs: number
  readonly cpuUs: number
  readonly items: number
  readonly samples: ReadonlyArray<number>
  readonly target?: { readonly min: number; readonly of: "ratio" | "perSec"; readonly met: boolean }
}

/** Milliseconds as microseconds, with a decimal when small. */
const micros = (ms: number) => round(ms * 1000, ms < 0.1 ? 1 : 0)

const figure = (samples: ReadonlyArray<Sample>, reference: number, target?: { min: number; of: "ratio" | "perSec" }): Figure => {
  const m = medianSample(samples)
  const perSec = perSecond(m)
  const ratio = perSec / reference
  return {
    perSec: round(perSec),
    ratio: round(ratio, 2),
    wallUs: micros(m.ms / m.items),
    cpuUs: micros(m.cpuMs / m.items),
    items: m.items,
    samples: samples.map((s) => round(perSecond(s))),
    ...(target ? { target: { min: round(target.min, 2), of: target.of, met: (target.of === "ratio" ? ratio : perSec) >= target.min } } : {})
  }
}

const log = (message: string) => process.stderr.write(`  … ${message}\n`)

/**
 * `times` rounds of the given measurements, interleaved so that disk and load drift hit them alike; each
 * sample is pushed onto the array of the same name in `into`.
 */
const rounds = async <K extends string>(
  times: number,
  into: Record<K, Array<Sample>>,
  measurements: Record<K, () => Promise<Sample>>
): Promise<void> => {
  for (let i = 0; i < times; i++) {
    for (const name in measurements) {
      log(`${name} (${i + 1}/${times})`)
      into[name].push(await measurements[name]())
    }
  }
}

const samples = (): Array<Sample> => []

const measureAll = async () => {
  const total = startTimer()
  const startedAt = new Date().toISOString()
  const loadBefore = loadavg()
  const memoryAtStart = memory()
  const { runs, steps } = workload

  log("warming up")
  await Ceiling.measure({ runs: 20, synchronous: "full" })
  await Ledgerflow.warmUp()

  const durable = { ceiling: samples(), storeRuns: samples(), sequential: samples(), concurrent: samples() }
  await rounds(repetitions, durable, {
    ceiling: () => Ceiling.measure({ runs, synchronous: "full" }),
    storeRuns: () => Ledgerflow.measureStoreRuns({ runs, synchronous: "full" }),
    sequential: () => Ledgerflow.measure({ runs, concurrency: 1, synchronous: "full" }),
    concurrent: () => Ledgerflow.measure({ runs, concurrency: workload.concurrency, synchronous: "full" })
  })
  const ceiling = perSecond(medianSample(durable.ceiling))

  const cpu = { ceiling: samples(), storeRuns: samples(), sequential: samples(), withoutBreaker: samples() }
  await rounds(repetitions, cpu, {
    ceiling: () => Ceiling.measure({ runs, synchronous: "normal" }),
    storeRuns: () => Ledgerflow.measureStoreRuns({ runs, synchronous: "normal" }),
    sequential: () => Ledgerflow.measure({ runs, concurrency: 1, synchronous: "normal" }),
    withoutBreaker: () => Ledgerflow.measure({ runs, concurrency: 1, synchronous: "normal", breaker: false })
  })
  const ceilingNormal = perSecond(medianSample(cpu.ceiling))

  log(`peer: ${peerRuns.sequentialRuns} sequential runs, ${peerRuns.concurrentRuns} runs 16 at a time`)
  const peer = await Peer.measure(peerRuns).then(
    (r) => ({ ok: true as const, ...r }),
    (error: unknown) => ({ ok: false as const, error: String(error) })
  )

  log("replay: building a 100k-event log")
  const replay = await Replay.measure({ repetitions })
  const bare = perSecond(medianSample(replay.bare))

  log(`memory: ${memoryCheckpoints.at(-1)} runs, 16 at a time`)
  const memoryPoints = await MemoryBench.measure({ checkpoints: memoryCheckpoints })

  log("Effect operations per run and per step, counted")
  const operations = await Operations.measure()

  const results = {
    meta: {
      startedAt,
      node: process.version,
      cpus: cpus().length,
      loadAverage: { before: loadBefore.map((l) => round(l, 2)), after: loadavg().map((l) => round(l, 2)) },
      repetitions,
      workload: { steps, runs, concurrency: workload.concurrency },
      notes: [
        "figures are medians of the repetitions; ratios are to references measured in this same process run",
        "cpuUs is the whole process's CPU (user + system) per item; wallUs includes fsync waits and CPU contention",
        "a 10-step ledgerflow run commits 12 transactions (claim, 10 steps, completion) but syncs 10: the claim and the completion are committed without their own fsync, so 1.0 is its fsync-bound best ratio",
        "core and store run from their compiled dist (what users import), not from sources through tsx"
      ]
    },
    durable: {
      ceiling: figure(durable.ceiling, ceiling),
      storeRuns: figure(durable.storeRuns, ceiling),
      sequential: figure(durable.sequential, ceiling, { min: 1 / 1.5, of: "ratio" }),
      concurrent: figure(durable.concurrent, ceiling, { min: 2, of: "ratio" })
    },
    cpuOverhead: {
      ceiling: figure(cpu.ceiling, ceilingNormal),
      storeRuns: figure(cpu.storeRuns, ceilingNormal),
      sequential: figure(cpu.sequential, ceilingNormal),
      withoutBreaker: figure(cpu.withoutBreaker, ceilingNormal)
    },
    peer: peer.ok
      ? {
        runs: peerRuns,
        synchronous: peer.synchronous,
        startupMs: round(peer.startupMs),
        sequential: figure([peer.sequential], ceiling),
        concurrent: figure([peer.concurrent], ceiling),
        ledgerflowOverPeer: {
          sequential: round(perSecond(medianSample(durable.sequential)) / perSecond(peer.sequential), 1),
          concurrent: round(perSecond(medianSample(durable.concurrent)) / perSecond(peer.concurrent), 1)
        }
      }
      : { error: peer.error },
    replay: {
      events: replay.events,
      runs: replay.runs,
      bare: figure(replay.bare, bare),
      jsonParse: figure(replay.jsonParse, bare),
      readDecodeFold: figure(replay.readDecodeFold, bare, { min: 200_000, of: "perSec" }),
      engineReplay: figure(replay.engineReplay, bare, { min: 200_000, of: "perSec" })
    },
    memory: memoryPoints,
    operations,
    process: { atStart: memoryAtStart, atEnd: memory() }
  }
  return { ...results, durationMs: round(total(0).ms) }
}

type Results = Awaited<ReturnType<typeof measureAll>>

const main = async () => {
  const results = await measureAll()
  mkdirSync(new URL("../results/", import.meta.url), { recursive: true })
  writeFileSync(new URL("../results/latest.json", import.meta.url), JSON.stringify(results, null, 2) + "\n")
  process.stdout.write(table(results))
}

// ---------------------------------------------------------------------------------------------------------
// The table

const pad = (s: string, n: number) => s.padEnd(n)
const num = (n: number) => n.toLocaleString("en-US")
const verdict = (f: Figure) =>
  f.target === undefined ? "" : `${f.target.met ? "ok  " : "MISS"} ≥ ${f.target.of === "ratio" ? round(f.target.min, 2) : num(f.target.min) + "/s"}`

const row = (label: string, f: Figure, unit = "steps/s") =>
  `  ${pad(label, 50)}${num(f.perSec).padStart(9)} ${pad(unit, 8)}${f.ratio.toFixed(2).padStart(7)}${
    num(f.wallUs).padStart(9)
  }${num(f.cpuUs).padStart(9)}   ${verdict(f)}\n`

const table = (r: Results): string => {
  const load = (l: ReadonlyArray<number>) => l.map((x) => x.toFixed(1)).join(" ")
  let out = `\nledgerflow bench — node ${r.meta.node}, ${r.meta.cpus} cpus, load ${load(r.meta.loadAverage.before)} → ${
    load(r.meta.loadAverage.after)
  }, medians of ${repetitions}, ${workload.steps}-step pipeline × ${workload.runs} runs\n\n`
  out += `  ${pad("", 50)}${"rate".padStart(9)} ${pad("", 8)}${"ratio".padStart(7)}${"µs wall".padStart(9)}${"µs cpu".padStart(9)}   target\n`
  out += " durable step — WAL, synchronous=FULL (ratio to the ceiling)\n"
  out += row("ceiling: raw better-sqlite3, 1 txn per step", r.durable.ceiling)
  out += row("the store alone: a run's store calls, no engine", r.durable.storeRuns)
  out += row("ledgerflow, sequential", r.durable.sequential)
  out += row(`ledgerflow, ${workload.concurrency} concurrent runs`, r.durable.concurrent)
  out += "    (a 10-step run commits 12 transactions but syncs 10: claim and completion ride on the next fsync)\n"
  if ("error" in r.peer) {
    out += `  peer: could not be measured: ${r.peer.error}\n`
  } else {
    out += row(`peer @effect/workflow+cluster, sequential (${r.peer.runs.sequentialRuns} runs)`, r.peer.sequential)
    out += row(`peer, ${workload.concurrency} concurrent (${r.peer.runs.concurrentRuns} runs)`, r.peer.concurrent)
    out += `  ${pad("ledgerflow ÷ peer", 50)}${`${r.peer.ledgerflowOverPeer.sequential}× sequential, ${r.peer.ledgerflowOverPeer.concurrent}× concurrent`.padStart(9)}\n`
  }
  out += " CPU cost without fsync — synchronous=NORMAL (ratio to the raw loop)\n"
  out += row("raw better-sqlite3, 1 txn per step", r.cpuOverhead.ceiling)
  out += row("the store alone: a run's store calls, no engine", r.cpuOverhead.storeRuns)
  out += row("ledgerflow, sequential", r.cpuOverhead.sequential)
  out += row("ledgerflow, sequential, storm breaker off", r.cpuOverhead.withoutBreaker)
  out += ` replay — ${num(r.replay.events)} events in ${r.replay.runs} runs (ratio to bare iteration)\n`
  out += row("bare row iteration (better-sqlite3 .all)", r.replay.bare, "events/s")
  out += row("+ JSON.parse of each event", r.replay.jsonParse, "events/s")
  out += row("Engine.state: read, decode, Journal.fold", r.replay.readDecodeFold, "events/s")
  out += row("Engine.replay of 1000-step runs", r.replay.engineReplay, "events/s")
  out += ` memory — one engine, runs ${workload.concurrency} at a time (synchronous=NORMAL)\n`
  for (const p of r.memory) {
    out += `  ${pad(p.runs === 0 ? "after a 100-run warm-up" : `after ${num(p.runs)} runs`, 50)}rss ${p.rssMb.toFixed(1).padStart(6)} MB   heap ${
      p.heapUsedMb?.toFixed(1).padStart(5) ?? "  n/a"
    } MB${p.stepsPerSec === undefined ? "" : `   ${num(p.stepsPerSec)} steps/s`}\n`
  }
  out += " Effect operations, counted (the same on any machine; fewer is less work a step)\n"
  const ops = (label: string, o: Operations.Operations) =>
    `  ${pad(label, 50)}${o.perRun.toFixed(0).padStart(5)} a run  ${o.perStep.toFixed(1).padStart(5)} a step  ${
      o.perStepWithRun.toFixed(1).padStart(5)
    } a step with its share of its run\n`
  out += ops("memory store (the engine alone), sequential", r.operations.memory)
  out += ops("SQLite, sequential", r.operations.sqlite)
  out += ops(`SQLite, ${workload.concurrency} concurrent runs`, r.operations.sqliteConcurrent)
  out += `  ${pad("process", 50)}rss ${r.process.atStart.rssMb} MB at start, ${r.process.atEnd.rssMb} MB at end; ${
    round(r.durationMs / 1000)
  } s in all\n\n`
  return out
}

main().then(
  () => {
    cleanUp()
    process.exit(0)
  },
  (error: unknown) => {
    cleanUp()
    console.error(error)
    process.exit(1)
  }
)
