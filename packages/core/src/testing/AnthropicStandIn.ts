/**
 * A local stand-in for the Anthropic Messages API: a real HTTP server on 127.0.0.1 that the real
 * `@anthropic-ai/sdk` talks to, with scripted replies and usage, injected faults, and a meter of what
 * would have been billed. Point a client at it with `new Anthropic({ apiKey: "test", baseURL: url })`.
 *
 * Endpoints: `POST /v1/messages` (JSON or SSE with `stream: true`), `POST /v1/messages/count_tokens`,
 * and, for a script or test in another process, `GET /_meter`, `POST /_script` (a script entry or a
 * list of them, appended) and `POST /_reset`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/server.js"
import type { DefaultReply, Meter, Script } from "./internal/script.js"

// The script language and the meter, as Schemas (see `internal/script.ts` for each entry's meaning).
export {
  CutAfterHeadersFault,
  DefaultReply,
  Fault,
  JsonReply,
  Meter,
  ModelMeter,
  Reply,
  ResetFault,
  Script,
  ScriptedUsage,
  ScriptFromJson,
  SlowFault,
  StatusFault,
  StreamErrorFault,
  TextReply,
  ToolUseReply
} from "./internal/script.js"

/** The server could not start (e.g. the port is taken). */
export class StandInError extends Schema.TaggedError<StandInError>()("StandInError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

export interface Options {
  /** The port to listen on; default 0, an ephemeral port. */
  readonly port?: number | undefined
  /** The answer when the script is empty: `"echo"` (the last user text, the default) or a fixed reply. */
  readonly defaultReply?: DefaultReply | undefined
}

export interface Service {
  /** `http://127.0.0.1:PORT`: the client's `baseURL`. */
  readonly url: string
  readonly port: number
  /** Appends entries to the script; each request takes the next one, or the default reply. */
  readonly script: (...items: ReadonlyArray<Script>) => Effect.Effect<void>
  /** How many script entries are still to be consumed. */
  readonly pending: Effect.Effect<number>
  /** A snapshot of calls, billed calls, billed tokens per model and the request bodies received. */
  readonly meter: Effect.Effect<Meter>
  /** Empties the script and the meter. */
  readonly reset: Effect.Effect<void>
}

export class AnthropicStandIn extends Context.Tag("@ledgerflow/core/AnthropicStandIn")<
  AnthropicStandIn,
  Service
>() {}

/** Starts a stand-in; it is closed (in-flight replies cut) when the scope closes. */
export const make = (options: Options = {}): Effect.Effect<Service, StandInError, Scope.Scope> =>
  internal.make(options).pipe(
    Effect.mapError((cause) =>
      new StandInError({
        message: `The Anthropic stand-in could not listen on 127.0.0.1:${options.port ?? 0}: ${cause.message}`,
        cause
      })
    )
  )

/** A stand-in for the lifetime of the layer. */
export const layer = (options: Options = {}): Layer.Layer<AnthropicStandIn, StandInError> =>
  Layer.scoped(AnthropicStandIn, make(options))
