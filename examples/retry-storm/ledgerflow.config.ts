/** The retry-storm example alone, for `ledgerflow --config retry-storm/ledgerflow.config.ts …`. */
export { layer } from "../ledgerflow.config.js"
import { retryStorm } from "../src/retryStorm.js"

export const pipelines = [retryStorm]
