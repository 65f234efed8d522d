/**
 * Durability of the hot connection's commits. It commits with `synchronous=NORMAL` (the WAL frames reach the
 * OS, not the disk); when the store was opened `synchronous: "full"`, a commit holding a durable write is
 * made durable here, before its callers resume, by an `fdatasync` of the WAL file — what SQLite's FULL does
 * inside COMMIT, with `fsync` in this build (which also flushes the file's times: one more journal write).
 * A commit holding only writes the engine can rebuild (a claim, a completion, a lease renewal) is not
 * flushed: the next flush covers it. A crash before a flush loses only whole transactions (the WAL's
 * checksums end recovery at the last complete commit), never corrupts.
 *
 * The flush runs on the event loop. Measured: on libuv's thread pool, overlapping other runs' work, 16
 * concurrent runs went slower (268 vs 243 µs a step), the hand-offs costing more than the overlap saved.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export interface WalSync {
  /** A commit was made; if it holds a durable write, flush the WAL now (throws if the flush fails). */
  readonly committed: (durable: boolean) => void
  /** Flush what is not yet durable and release the file (the store is closing). */
  readonly close: () => void
}

export const make = (filename: string): WalSync => {
  let fd: number | undefined
  let behind = false
  // After a failed flush the OS may have dropped the dirty pages: nothing later can be promised durable.
  let failed: unknown

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

  const flush = () => {
    if (failed !== undefined) throw failed
    try {
      fs.fdatasyncSync(walFd())
      behind = false
    } catch (cause) {
      failed = cause
      throw cause
    }
  }

  return {
    committed: (durable) => {
      if (durable) flush()
      else behind = true
    },
    close: () => {
      if (fd === undefined && !behind) return
      try {
        if (behind && failed === undefined) flush()
      } finally {
        if (fd !== undefined) fs.closeSync(fd)
        fd = undefined
      }
    }
  }
}
