/**
 * Durability of the hot connection's commits. It commits with `synchronous=NORMAL` (the WAL frames reach the
 * OS, not the disk); when the store was opened `synchronous: "full"`, commits are made durable here by an
 * `fdatasync` of the WAL file — what SQLite's FULL does inside COMMIT (with `fsync`, in this build: it also
 * flushes the file's times, one more journal write per commit; measured 227 µs vs 264–347 µs a commit).
 * A crash before the flush loses only whole transactions (the WAL's checksums end recovery at the last
 * complete commit), never corrupts.
 *
 * A commit made alone is flushed at once, on the event loop: there is nothing to overlap. A batch (runs
 * executing side by side) is flushed on libuv's thread pool while the engine goes on with the other runs;
 * flushes are coalesced: one runs at a time and covers every commit made before it started.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export interface WalSync {
  /**
   * A commit was made: the next flush covers it. One holding a durable write is flushed before this returns
   * when \`now\`, else on the thread pool (started at once unless a flush is running).
   */
  readonly committed: (durable: boolean, now: boolean) => void
  /**
   * Call `done` once every commit made so far is durable, or with the error that stopped it. Returns a
   * canceller (the caller went away).
   */
  readonly whenDurable: (done: (error?: unknown) => void) => () => void
  /** Flush what is not yet durable, synchronously, and release the file (the store is closing). */
  readonly close: () => void
}

interface Waiter {
  readonly target: number
  readonly done: (error?: unknown) => void
}

export const make = (filename: string): WalSync => {
  let commits = 0
  let durable = 0
  /** The latest commit that holds a durable write: flushes go on until it is covered. */
  let wanted = 0
  let flushing = false
  let waiters: Array<Waiter> = []
  let fd: number | undefined
  // After a failed flush the OS may have dropped the dirty pages: nothing later can be promised durable.
  let failed: unknown
  let closed = false

  /** The WAL file, opened at the first flush (it exists once a commit was made); its directory synced once. */
  const walFd = (): number => {
    if (fd === undefined) {
      fd = fs.openSync(`${filename}-wal`, "r")
      const dir = fs.openSync(path.dirname(filename), "r")
      try {
        fs.fsyncSync(dir)
      } finally {
        fs.closeSync(dir)
      }
    }
    return fd
  }

  const settle = (error: unknown) => {
    const ready = error === undefined ? waiters.filter((w) => w.target <= durable) : waiters
    waiters = error === undefined ? waiters.filter((w) => w.target > durable) : []
    for (const w of ready) w.done(error)
  }

  /** Flush on the event loop: everything committed so far is durable when it returns. */
  const flushSync = () => {
    try {
      fs.fdatasyncSync(walFd())
      durable = commits
      settle(undefined)
    } catch (cause) {
      failed = cause
      settle(cause)
    }
  }

  const flush = () => {
    flushing = true
    const target = commits
    let handle: number
    try {
      handle = walFd()
    } catch (cause) {
      flushing = false
      failed = cause
      settle(cause)
      return
    }
    fs.fdatasync(handle, (error) => {
      flushing = false
      if (closed) {
        fs.closeSync(handle)
        return
      }
      if (error !== null) {
        failed = error
        settle(error)
        return
      }
      durable = Math.max(durable, target)
      settle(undefined)
      if (waiters.length > 0 || wanted > durable) flush()
    })
  }

  return {
    committed: (isDurable, now) => {
      commits++
      if (!isDurable) return
      wanted = commits
      if (closed || failed !== undefined) return
      if (now) flushSync()
      else if (!flushing) flush()
    },
    whenDurable: (done) => {
      if (failed !== undefined || closed) {
        done(failed)
        return () => {}
      }
      // Commits of rebuildable writes only (a claim, a completion) are covered by the next flush, not waited for.
      if (durable >= wanted) {
        done()
        return () => {}
      }
      const waiter: Waiter = { target: wanted, done }
      waiters.push(waiter)
      if (!flushing) flush()
      return () => {
        waiters = waiters.filter((w) => w !== waiter)
      }
    },
    close: () => {
      if (closed) return
      if (durable < wanted && failed === undefined) flushSync()
      closed = true
      // A flush still running on the thread pool closes the file when it returns.
      if (fd !== undefined && !flushing) fs.closeSync(fd)
    }
  }
}
