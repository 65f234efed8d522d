/** The agent-loop example alone, for `ledgerflow --config agent-loop/ledgerflow.config.ts …`. */
export { layer } from "../ledgerflow.config.js"
import { agentLoop } from "../src/agentLoop.js"

export const pipelines = [agentLoop]
