/**
 * ledgerflow core: durable steps on an append-only log, typed failures, retries only for what can heal.
 */
export * as Anthropic from "./Anthropic.js"
export * as CostLedger from "./CostLedger.js"
export * as Engine from "./Engine.js"
export * as Event from "./Event.js"
export * as EventStore from "./EventStore.js"
export * as Failure from "./Failure.js"
export * as Journal from "./Journal.js"
export * as LoopGuard from "./LoopGuard.js"
export * as Pipeline from "./Pipeline.js"
export * as Pricing from "./Pricing.js"
export * as RetryPolicy from "./RetryPolicy.js"
export * as RunContext from "./RunContext.js"
export * as RunError from "./RunError.js"
export * as Step from "./Step.js"
export * as StoreError from "./StoreError.js"
export * as Usage from "./Usage.js"
