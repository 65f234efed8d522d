/**
 * Postgres driver errors turned into `StoreError`s that say what happened on which server and what to do,
 * with the URL's password never in them. The original error stays in `cause`, so the classifier can still
 * read its SQLSTATE or network code.
 */
import { StoreError } from "@ledgerflow/core"
import { driverError } from "./errors.js"

/** The URL as it may be shown: no password (nor any other secret of the query string). */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    for (const name of [...parsed.searchParams.keys()]) {
      if (/pass|secret|key|token/i.test(name)) parsed.searchParams.set(name, "***")
    }
    return parsed.toString()
  } catch {
    // Not a URL we can parse: show its scheme only, which cannot hold a secret.
    return `${url.split(":")[0] ?? "postgres"}://…`
  }
}

const field = (error: unknown, name: string): string => {
  if (typeof error !== "object" || error === null || !(name in error)) return ""
  const value: unknown = Reflect.get(error, name)
  return typeof value === "string" ? value : ""
}

/** The SQLSTATE (`57P01`) or the Node network code (`ECONNREFUSED`) of a failure, or "". */
export const codeOf = (cause: unknown): string => {
  const error = driverError(cause)
  const code = field(error, "code")
  if (code !== "") return code
  // An AggregateError (every address of a host refused) carries the code on its members.
  const errors: unknown = typeof error === "object" && error !== null ? Reflect.get(error, "errors") : undefined
  return Array.isArray(errors) ? codeOf(errors[0]) : ""
}

const messageOf = (cause: unknown): string => {
  const error = driverError(cause)
  const text = error instanceof Error ? error.message : String(error)
  // A driver message may quote the connection string it was given.
  return text.replaceAll(/postgres(ql)?:\/\/[^\s"']+/g, (url) => redactUrl(url)) || codeOf(cause) || "unknown error"
}

const unreachable = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"])

/** What to say about a failure of `operation` on the store at `where` (a redacted URL). */
export const describe = (operation: string, where: string, cause: unknown): string => {
  const code = codeOf(cause)
  const detail = messageOf(cause)
  if (unreachable.has(code) || /timeout/i.test(detail) && /connect/i.test(detail)) {
    // Which operation found the server gone says nothing more to the user.
    return `cannot reach the Postgres server of the ledgerflow store ${where} (${detail}); ` +
      `check that it is running and that the URL's host and port are right`
  }
  if (code === "28P01" || code === "28000") {
    return `the Postgres server of ${where} refused the login (${detail}); check the user and password in the URL`
  }
  if (code === "3D000") {
    return `${detail} on the server of ${where}; create the database, or point the URL at an existing one`
  }
  if (code === "42501") {
    return `${operation}: the user of ${where} lacks a privilege (${detail}); grant it, or connect as the owner of the ledgerflow schema`
  }
  if (code.startsWith("08") || code === "57P01" || code === "57P03" || /Connection terminated|terminated unexpectedly/i.test(detail)) {
    return `${operation}: the connection to the ledgerflow store ${where} was lost (${detail}); retry`
  }
  return `${operation} failed on the ledgerflow store ${where}: ${detail}${code === "" ? "" : ` (${code})`}`
}

export const storeError = (operation: string, where: string, cause: unknown): StoreError.StoreError =>
  new StoreError.StoreError({ operation, message: describe(operation, where, cause), cause })
