/** Rule 5: SQL — SQLite result codes and messages, Postgres SQLSTATE codes, the `pg` client's connection errors. */
import { get, message, str, truncate } from "./read.js"
import { type Rule, verdict } from "./rule.js"

/** 5a. SQLite: a busy or locked database heals; a schema mismatch or a constraint violation does not. */
export const sqlite: Rule = ({ chain }) => {
  for (const e of chain) {
    const code = str(get(e, "code")) ?? ""
    const msg = message(e)
    if (/^SQLITE_(BUSY|LOCKED)/.test(code) || /database (table )?is locked/i.test(msg)) {
      return verdict("transient", `SQLite ${code || "lock"} (${truncate(msg)}) is transient (rule: sqlite-code)`, "sqlite-code")
    }
    if (/no such (column|table)|has no column named/i.test(msg)) {
      return verdict(
        "deterministic",
        `SQLite "${truncate(msg)}": the schema does not match the query (a missing migration?), which no retry heals ` +
          `(rule: sqlite-code)`,
        "sqlite-code"
      )
    }
    if (/^SQLITE_(CONSTRAINT|MISMATCH)/.test(code)) {
      return verdict("deterministic", `SQLite ${code} (${truncate(msg)}) is deterministic (rule: sqlite-code)`, "sqlite-code")
    }
  }
  return undefined
}

const POSTGRES_TRANSIENT: ReadonlyMap<string, string> = new Map([
  ["40001", "serialization_failure"],
  ["40P01", "deadlock_detected"],
  ["55P03", "lock_not_available"],
  ["57P01", "admin_shutdown"],
  ["57P03", "cannot_connect_now"],
  ["53300", "too_many_connections"]
])
const POSTGRES_DETERMINISTIC: ReadonlyMap<string, string> = new Map([
  ["42703", "undefined_column"],
  ["42P01", "undefined_table"]
])

/** 5b. Postgres SQLSTATE codes: serialization, deadlock, lock, shutdown and connection classes heal. */
export const postgres: Rule = ({ chain }) => {
  for (const e of chain) {
    const code = str(get(e, "code"))
    if (code === undefined || !/^[0-9][0-9A-Z]{4}$/.test(code)) continue
    const transientName = POSTGRES_TRANSIENT.get(code) ?? (code.startsWith("08") ? "connection_exception" : undefined)
    if (transientName !== undefined) {
      return verdict(
        "transient",
        `Postgres ${code} ${transientName} (${truncate(message(e))}) is transient (rule: postgres-code)`,
        "postgres-code"
      )
    }
    const deterministicName = POSTGRES_DETERMINISTIC.get(code) ??
      (code.startsWith("23") ? "integrity_constraint_violation" : code.startsWith("22") ? "data_exception" : undefined)
    if (deterministicName !== undefined) {
      return verdict(
        "deterministic",
        `Postgres ${code} ${deterministicName} (${truncate(message(e))}) is deterministic (rule: postgres-code)`,
        "postgres-code"
      )
    }
  }
  return undefined
}

/**
 * 5c. What the `pg` client throws without a SQLSTATE when the connection, not the query, failed: the server
 * went away mid-query ("Connection terminated unexpectedly"), a query on a client whose connection failed
 * or was ended ("… not queryable"), a connect or query timeout of the client or its pool. The next attempt,
 * on a new connection, may succeed.
 */
const POSTGRES_CLIENT = [
  /^Connection terminated unexpectedly$/,
  /^Connection terminated due to connection timeout$/,
  /^Connection terminated$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Client was closed and is not queryable$/,
  // The client's own connect timeout (pg 8.2x), and its pool's wait for a free connection.
  /^timeout expired$/,
  /^timeout exceeded when trying to connect$/,
  /^Query read timeout$/
]

export const postgresClient: Rule = ({ chain }) => {
  const found = chain.find((e) => {
    const text = message(e)
    return POSTGRES_CLIENT.some((pattern) => pattern.test(text))
  })
  return found === undefined ? undefined : verdict(
    "transient",
    `the Postgres connection failed (${truncate(message(found))}): a new connection may succeed (rule: postgres-client)`,
    "postgres-client"
  )
}

