/**
 * ledgerflow stores: `EventStore` adapters (SQLite is the embedded default) and SQL preflight checks.
 */
export * as Preflight from "./Preflight.js"
export * as SqliteStore from "./SqliteStore.js"
