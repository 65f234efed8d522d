/**
 * The examples' config for the `ledgerflow` CLI: the pipelines, and the layer they need — the Claude
 * client (the real API when ANTHROPIC_API_KEY is set, else ANTHROPIC_BASE_URL, e.g. the local stand-in),
 * the application database and the customer webhook.
 */
import { Anthropic } from "@ledgerflow/core"
import { Layer } from "effect"
import { adReport } from "./src/adReport.js"
import { agentLoop } from "./src/agentLoop.js"
import { AppDbLive, WebhookLive } from "./src/app.js"
import { retryStorm } from "./src/retryStorm.js"

export const pipelines = [adReport, retryStorm, agentLoop]

export const layer = Layer.mergeAll(Anthropic.layer(), AppDbLive, WebhookLive)
