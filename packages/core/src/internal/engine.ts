/**
 * The engine's implementation, assembled: admission (`start`), execution (`executeRun`), operations on
 * existing runs (`existing`, `recover`) and the storm breaker, over one store and one lease keeper.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { EngineOptions, EngineService } from "../Engine.js"
import * as Event from "../Event.js"
import type { EventStoreService } from "../EventStore.js"
import * as Breaker from "./breaker.js"
import * as Core from "./core.js"
import * as Existing from "./existing.js"
import { makeOwner } from "./owner.js"
import { recover } from "./recover.js"
import * as Start from "./start.js"

export const make = (store: EventStoreService, options: EngineOptions = {}) => {
  const core = Core.make(store, {
    leaseMs: Duration.toMillis(options.leaseDuration ?? Duration.seconds(30)),
    owner: options.owner ?? makeOwner()
  })
  const service: EngineService = {
    owner: core.owner,
    run: (pipeline, input, runOptions) =>
      Start.run(core, pipeline, input, runOptions),
    resume: (pipeline, runId, resumeOptions) => Existing.resume(core, pipeline, runId, resumeOptions),
    replay: (pipeline, runId) => Existing.replay(core, pipeline, runId),
    rollback: (pipeline, runId, rollbackOptions) => Existing.rollback(core, pipeline, runId, rollbackOptions),
    recover: (pipelines, recoverOptions) => recover(core, pipelines, recoverOptions),
    resetBreaker: (pipeline) => Breaker.reset(core, pipeline),
    breakerState: (pipeline) => Breaker.state(core, pipeline),
    getRun: (runIdOrPrefix) => Core.getRun(core, runIdOrPrefix),
    lookup: (pipeline, key) => store.findByKey(pipeline.name, key),
    runs: store.listRuns,
    events: (runId) => Effect.flatMap(store.readEvents(runId), Event.decodeAllWithSeq),
    state: (runId) => Core.readState(core, runId)
  }
  return { service, keepLeases: core.leases.keep }
}
