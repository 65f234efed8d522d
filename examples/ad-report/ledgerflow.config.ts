/** The ad-report example alone, for `ledgerflow --config ad-report/ledgerflow.config.ts …`. */
export { layer } from "../ledgerflow.config.js"
import { adReport } from "../src/adReport.js"

export const pipelines = [adReport]
