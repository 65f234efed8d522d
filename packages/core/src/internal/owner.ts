/**
 * Lease owners as processes on a host. The engine's default owner name says which process holds a lease —
 * `host/pid.start/random`, where `start` is the process's start time as the kernel counts it (Linux:
 * field 22 of `/proc/<pid>/stat`), so that a pid reused by another program is not taken for the owner.
 * A lease whose owner is a process of this host that no longer exists is expired at once: a resume after a
 * SIGKILL or a closed terminal does not wait out the lease (DESIGN, "Runs, keys and concurrency").
 */
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { hostname } from "node:os"

/** A process's start time (clock ticks since boot), or undefined where `/proc` cannot tell (not Linux). */
export const processStart = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so fields are counted after its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // starttime is field 22; the fields after comm start at field 3.
    const start = fields[22 - 3]
    return start !== undefined && /^\d+$/.test(start) ? start : undefined
  } catch {
    return undefined
  }
}

/** This process's owner name: host, pid and start time, and random bits for each engine of the process. */
export const makeOwner = (): string => {
  const start = processStart(process.pid)
  return `${hostname()}/${process.pid}${start !== undefined ? `.${start}` : ""}/${randomBytes(3).toString("hex")}`
}

/** The host, pid and (when recorded) start time an owner name says, if it is of `makeOwner`'s form. */
const parse = (owner: string): { readonly host: string; readonly pid: number; readonly start?: string } | undefined => {
  const parts = owner.split("/")
  if (parts.length < 3) return undefined
  const match = /^(\d+)(?:\.(\d+))?$/.exec(parts[parts.length - 2]!)
  if (match === null) return undefined
  const pid = Number(match[1])
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  return { host: parts.slice(0, -2).join("/"), pid, ...(match[2] !== undefined ? { start: match[2] } : {}) }
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
const exists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return typeof error === "object" && error !== null && "code" in error && error.code === "EPERM"
  }
}

/**
 * Whether `ownerGone` can tell of this owner (a `makeOwner` name of this host): its death then shows in
 * no store, only by looking at the process again.
 */
export const watchable = (owner: string): boolean => parse(owner)?.host === hostname()

/**
 * Why the owner of a lease is known to be gone, or undefined when it may be alive: an owner of another
 * host, a name not of `makeOwner`'s form, or a process whose start time cannot be read is taken to be
 * alive — the lease then runs out as usual. Never says gone of a live owner.
 */
export const ownerGone = (owner: string): string | undefined => {
  const parsed = parse(owner)
  if (parsed === undefined || parsed.host !== hostname()) return undefined
  if (!exists(parsed.pid)) return `its process ${parsed.pid} on this host no longer exists`
  if (parsed.start === undefined) return undefined
  const start = processStart(parsed.pid)
  return start !== undefined && start !== parsed.start
    ? `its process ${parsed.pid} on this host exited (the pid now belongs to another program, started later)`
    : undefined
}

/** Why a run's lease no longer holds (see `leaseLapsed`): it ran out, or its owner's process is gone. */
export interface Lapse {
  readonly why: string
  /** The lease's time ran out (the store checks it again when the run is taken). */
  readonly timedOut: boolean
}

/**
 * Why a run's lease no longer holds, or undefined while it does: it ran out (`timedOut`: the store checks
 * that again when it is taken), or its owner's process is gone (the store's token check alone guards the
 * takeover, since the lease's time has not run out).
 */
export const leaseLapsed = (
  run: { readonly owner: string; readonly leaseExpiresAt: number },
  now: number
): Lapse | undefined => {
  if (run.leaseExpiresAt <= now) return { why: `the lease of ${run.owner} expired`, timedOut: true }
  const gone = ownerGone(run.owner)
  return gone === undefined ? undefined : { why: `the owner ${run.owner} is gone (${gone})`, timedOut: false }
}
