/**
 * The progress line of long work: drawn on a terminal only, erased when the work ends however it ends, and
 * never keeping the process waiting (its drawing fiber is stopped with the work).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, TestClock } from "effect"
import { withProgress } from "../src/internal/output.js"

const terminal = (isTTY: boolean, columns = 80) => {
  const written: Array<string> = []
  return { written, stream: { isTTY, columns, write: (s: string) => written.push(s) > 0 } }
}

describe("withProgress", () => {
  it.effect("draws the label and the latest update on a terminal, then erases the line", () =>
    Effect.gen(function*() {
      const { stream, written } = terminal(true)
      const fiber = yield* Effect.fork(withProgress("exporting", (progress) =>
        Effect.gen(function*() {
          progress.update("12 events")
          yield* Effect.sleep("1 second")
          return "done"
        }), stream))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toBe("done")
      expect(written.some((s) => s.includes("exporting 12 events"))).toBe(true)
      expect(written.at(-1)).toBe("\r\x1b[2K")
      // Nothing is drawn after the work ended.
      const count = written.length
      yield* TestClock.adjust("1 second")
      expect(written.length).toBe(count)
    }))

  it.effect("a terminal that reports 0 columns (a pty without a size) gets the whole line, up to 80 columns", () =>
    Effect.gen(function*() {
      const { stream, written } = terminal(true, 0)
      const fiber = yield* Effect.fork(withProgress("exporting", () => Effect.sleep("1 second"), stream))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(written.some((s) => /^\r\x1b\[2K. exporting \(0s\)$/.test(s))).toBe(true)
    }))

  it.effect("erases the line when the work fails", () =>
    Effect.gen(function*() {
      const { stream, written } = terminal(true)
      const fiber = yield* Effect.fork(withProgress("replaying", () =>
        Effect.zipRight(Effect.sleep("1 second"), Effect.fail("boom")), stream))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.await(fiber)).toEqual(Exit.fail("boom"))
      expect(written.at(-1)).toBe("\r\x1b[2K")
    }))

  it.effect("writes nothing when the stream is not a terminal", () =>
    Effect.gen(function*() {
      const { stream, written } = terminal(false)
      const fiber = yield* Effect.fork(withProgress("exporting", () => Effect.sleep("1 second"), stream))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(written).toEqual([])
    }))
})
