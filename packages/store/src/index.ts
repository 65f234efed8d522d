/**
 * ledgerflow stores: `EventStore` adapters. SQLite is the embedded default.
 */
export * as SqliteStore from "./SqliteStore.js"
