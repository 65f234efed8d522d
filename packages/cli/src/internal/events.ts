/**
 * A run's events as the CLI reads them: the stored envelope (seq, type, version, time) with the decoded
 * event, and the flat JSON line `export` and `show --json` write.
 */
import { Event, EventStore, type StoreError } from "@ledgerflow/core"
import * as Effect from "effect/Effect"

export interface LoggedEvent {
  readonly stored: Event.StoredEvent
  readonly event: Event.Event
}

/** A run's events in seq order, decoded: an event this version does not know fails with `UnknownEvent`. */
export const read = (
  runId: string,
  fromSeq?: number
): Effect.Effect<Array<LoggedEvent>, StoreError.StoreError | Event.UnknownEvent, EventStore.EventStore> =>
  Effect.flatMap(EventStore.EventStore, (store) => store.readEvents(runId, fromSeq)).pipe(
    Effect.flatMap((stored) =>
      Effect.forEach(stored, (s) => Effect.map(Event.decode(s), (event) => ({ stored: s, event })))
    )
  )

/**
 * One event as a flat JSON object: `runId`, `seq`, `type`, `v`, `at` (epoch ms), then the event's own
 * fields as they are encoded in the log (failures with their `_tag`, durations in ms). DuckDB's
 * `read_json_auto` and jq read a file of these lines as is.
 */
export const toJson = (logged: LoggedEvent): Record<string, unknown> => {
  const { runId, seq, type, v, at } = logged.stored
  const fields: Record<string, unknown> = JSON.parse(logged.stored.data)
  delete fields["_tag"]
  delete fields["at"]
  return { runId, seq, type, v, at, ...fields }
}
