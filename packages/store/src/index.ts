/**
 * ledgerflow stores: `EventStore` adapters (SQLite is the embedded default, Postgres serves many workers)
 * and SQL preflight checks.
 */
export * as PgStore from "./PgStore.js"
export * as Preflight from "./Preflight.js"
export * as SqliteStore from "./SqliteStore.js"
