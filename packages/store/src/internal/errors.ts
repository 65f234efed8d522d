/**
 * Driver errors turned into `StoreError`s whose message says what happened to which file and what to do.
 * The original error stays in `cause`, so the classifier can still read its SQLite code.
 */
import { StoreError } from "@ledgerflow/core"

/** The driver's error: `@effect/sql` wraps it in a `SqlError` whose `cause` it is. */
export const driverError = (cause: unknown): unknown =>
  typeof cause === "object" && cause !== null && "_tag" in cause && cause._tag === "SqlError" && "cause" in cause
    ? cause.cause
    : cause

const codeOf = (cause: unknown): string => {
  const error = driverError(cause)
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : ""
}

const messageOf = (cause: unknown): string => {
  const error = driverError(cause)
  return error instanceof Error ? error.message : String(error)
}

export const isBusy = (cause: unknown): boolean => codeOf(cause).startsWith("SQLITE_BUSY")

export const storeError = (
  operation: string,
  filename: string,
  cause: unknown,
  busyTimeoutMs: number
): StoreError.StoreError => {
  const code = codeOf(cause)
  const detail = messageOf(cause)
  let message: string
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    message = `${operation}: the ledgerflow store ${filename} is locked by another process (waited ${busyTimeoutMs} ms); ` +
      `wait for it to finish, or raise the busy timeout`
  } else if (code.startsWith("SQLITE_READONLY") || code === "SQLITE_CANTOPEN" || code.startsWith("SQLITE_PERM")) {
    message = `${operation}: cannot write the ledgerflow store ${filename} (${detail}); ` +
      `check the permissions of the file and its directory, or use a writable path`
  } else if (code === "SQLITE_FULL") {
    message = `${operation}: the disk holding ${filename} is full; free some space and retry`
  } else if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    message = `${operation}: the ledgerflow store ${filename} is damaged (${detail}); restore it from a backup`
  } else {
    message = `${operation} failed on the ledgerflow store ${filename}: ${detail}${code === "" ? "" : ` (${code})`}`
  }
  return new StoreError.StoreError({ operation, message, cause })
}
