/**
 * `ledgerflow failures`: the runs that carry a failure, grouped by its fingerprint — the 21 identical
 * failures of a retry storm are one line, ×21 — with first and last seen and the runs.
 */
import { Command, Options } from "@effect/cli"
import { Engine, type Event, type EventStore, type StoreError } from "@ledgerflow/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Events from "../internal/events.js"
import * as format from "../internal/format.js"
import { Globals, options as globalOptions } from "../internal/globals.js"
import { describe } from "../internal/help.js"
import * as Output from "../internal/output.js"
import * as Run from "../internal/run.js"
import { wrap } from "../internal/render.js"
import * as Since from "../internal/since.js"
import * as Store from "../internal/store.js"

export interface Group {
  readonly fingerprint: string
  readonly count: number
  readonly classification: string
  readonly reason: string
  readonly rule: string | null
  readonly pipelines: ReadonlyArray<string>
  readonly steps: ReadonlyArray<string>
  readonly firstSeen: number
  readonly lastSeen: number
  /** Starts by key of these runs (redeliveries included), and how many of them executed the pipeline. */
  readonly deliveries: number
  readonly executions: number
  /** Newest first. */
  readonly runIds: ReadonlyArray<string>
}

export interface Occurrence {
  readonly run: EventStore.RunRecord
  readonly at: number
  readonly stepId: string | undefined
  readonly rule: string | undefined
  readonly executions: number
}

/** The run's latest `RunFailed`: when and where it failed (the projection says how). */
export const occurrence = (
  run: EventStore.RunRecord
): Effect.Effect<Occurrence, StoreError.StoreError | Event.UnknownEvent, EventStore.EventStore> =>
  Effect.map(Events.read(run.runId), (logged): Occurrence => {
    const failed = [...logged].reverse().find((e) => e.event._tag === "RunFailed")?.event
    const executions = Run.executions(logged.map((e) => e.event))
    return failed?._tag === "RunFailed"
      ? { run, at: failed.at, stepId: failed.stepId, rule: failed.failure.rule, executions }
      : { run, at: run.updatedAt, stepId: undefined, rule: undefined, executions }
  })

export const group = (occurrences: ReadonlyArray<Occurrence>): Array<Group> => {
  const byFingerprint = new Map<string, Array<Occurrence>>()
  for (const o of occurrences) {
    const key = o.run.failureFingerprint ?? ""
    byFingerprint.set(key, [...(byFingerprint.get(key) ?? []), o])
  }
  return [...byFingerprint.entries()].map(([fingerprint, os]) => {
    const newest = [...os].sort((a, b) => b.at - a.at)
    const latest = newest[0]!
    return {
      fingerprint,
      count: os.length,
      classification: latest.run.failureClass ?? "unknown",
      reason: latest.run.failureReason ?? "",
      rule: latest.rule ?? null,
      pipelines: [...new Set(os.map((o) => `${o.run.pipeline}@${o.run.version}`))],
      steps: [...new Set(os.flatMap((o) => o.stepId !== undefined ? [o.stepId] : []))],
      firstSeen: Math.min(...os.map((o) => o.at)),
      lastSeen: latest.at,
      deliveries: os.reduce((n, o) => n + o.run.deliveries, 0),
      executions: os.reduce((n, o) => n + o.executions, 0),
      runIds: newest.map((o) => o.run.runId)
    }
  }).sort((a, b) => b.count - a.count || b.lastSeen - a.lastSeen)
}

export const command = Command.make("failures", {
  ...globalOptions,
  pipeline: Options.text("pipeline").pipe(
    Options.withPseudoName("NAME"),
    Options.withDescription("Only failures of this pipeline."),
    Options.optional
  ),
  since: Since.option("failures")
}, (args) =>
  Store.provide(Effect.gen(function*() {
    const globals = yield* Globals
    const engine = yield* Engine.Engine
    const since = Option.getOrUndefined(args.since)
    const runs = yield* engine.runs({ pipeline: Option.getOrUndefined(args.pipeline), since })
    const failing = runs.filter((r) => r.failureFingerprint !== undefined && r.status !== "completed")
    const occurrences = yield* Output.withProgress("reading failures", (progress) =>
      Effect.forEach(failing, (run, i) => {
        progress.update(`${i + 1}/${failing.length} runs`)
        return occurrence(run)
      }))
    const groups = group(occurrences.filter((o) => since === undefined || o.at >= since))
    if (globals.json) return yield* Output.ndjson(groups)
    if (groups.length === 0) return yield* Output.note("no failures")
    const { style, width } = globals
    const indent = "      "
    const more = (lines: ReadonlyArray<string>) => lines.map((l) => `${indent}${l}`)
    yield* Output.lines(groups.flatMap((g, i) => {
      const count = `×${g.count}`.padStart(5)
      const where = [g.pipelines.join(", "), ...(g.steps.length > 0 ? [g.steps.join(", ")] : [])].join(" · ")
      const paint = g.classification === "deterministic" ? style.red : style.yellow
      const shown = g.runIds.slice(0, 2)
      return [
        ...(i > 0 ? [""] : []),
        `${style.bold(count)} ${paint(g.classification)}  ${where}`,
        ...more(wrap(g.reason, width - indent.length)),
        // Redeliveries of these keys (a queue retrying): the 20 that executed nothing are told here.
        ...(g.deliveries > g.count ? more([Run.deliveriesText(g.deliveries, g.executions)]) : []),
        ...more([
          `first ${format.time(g.firstSeen)}  last ${format.time(g.lastSeen)}`,
          `runs  ${shown.join(" ")}${g.runIds.length > shown.length ? ` +${g.runIds.length - shown.length}` : ""}`
        ])
      ]
    }))
  }))).pipe(Command.withDescription(describe(
    "Group the runs that carry a failure (failed, rolled back, needing attention) by its fingerprint: the failure's class, rule, error and message with ids and numbers normalised away. Each group shows how many runs, the classification and reason, where it happened, first and last seen, and the newest runs.",
    [
      { command: "ledgerflow failures", does: "what is failing, most frequent first" },
      { command: "ledgerflow failures --since 1d --pipeline retry-storm", does: "one pipeline's failures of the last day" },
      { command: "ledgerflow failures --json | jq -r '.runIds[]'", does: "every failed run's id" }
    ],
    [
      "A run resumed to completion no longer counts. Redeliveries of a failing key (a queue retrying it) show as \"21 deliveries, 1 execution\".",
      "--json prints one group a line (NDJSON), with all its run ids, its deliveries and executions."
    ]
  )))
