/**
 * The testing kit (`@ledgerflow/core/testing`): a local Anthropic Messages API stand-in driven by the
 * real SDK.
 */
export * as AnthropicStandIn from "./testing/AnthropicStandIn.js"
