/**
 * Token usage reported by a step attempt (an LLM call reports its own). Recorded on the attempt's event,
 * priced later by the cost ledger.
 */
import * as Schema from "effect/Schema"

export class Usage extends Schema.Class<Usage>("Usage")({
  model: Schema.String,
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  cacheWriteTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  cacheReadTokens: Schema.optionalWith(Schema.Number, { default: () => 0 })
}) {}
