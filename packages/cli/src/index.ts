/**
 * The `ledgerflow` command line as a library: its command tree and runner, for embedding or testing.
 * The binary (`bin/ledgerflow.js`) runs `main.ts`.
 */
export * as Cli from "./Cli.js"
