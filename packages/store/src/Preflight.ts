/**
 * Ready-made preflight checks for `Pipeline.make({ preflight })`: fail a run before it spends anything
 * when the database it will write to is not what its code expects (a migration not yet applied).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Failure } from "@ledgerflow/core"
import * as Effect from "effect/Effect"

/**
 * The table exists and has every one of `columns`, on the `SqlClient` in context (SQLite or Postgres).
 * Fails `Deterministic` naming what is missing and what to do.
 */
export const columnsExist = (options: {
  readonly table: string
  readonly columns: ReadonlyArray<string>
}): Effect.Effect<void, Failure.Deterministic, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const query = sql.onDialectOrElse({
      sqlite: () => sql<{ name: string }>`SELECT name FROM pragma_table_info(${options.table})`,
      orElse: () =>
        sql<{ name: string }>`SELECT column_name AS name FROM information_schema.columns WHERE table_name = ${options.table}`
    })
    const found = yield* query.pipe(
      Effect.mapError((cause) =>
        Failure.deterministic(`could not read the columns of table ${options.table}: ${cause.message}`, {
          rule: "preflight",
          cause
        })
      )
    )
    const present = new Set(found.map((row) => row.name))
    if (present.size === 0) {
      return yield* Effect.fail(Failure.deterministic(
        `table ${options.table} does not exist; run your migrations before starting runs`,
        { rule: "preflight" }
      ))
    }
    const missing = options.columns.filter((c) => !present.has(c))
    if (missing.length > 0) {
      return yield* Effect.fail(Failure.deterministic(
        `table ${options.table} has no column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; run the migration that adds ${
          missing.length > 1 ? "them" : "it"
        } before starting runs`,
        { rule: "preflight" }
      ))
    }
  })
