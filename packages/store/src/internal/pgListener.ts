/**
 * The Postgres store's ear: one `pg` client of its own (LISTEN holds a session, so it cannot be a pooled
 * connection), shared by every wait of the store. Every worker's status change or lease given up is a
 * NOTIFY on `channel`, sent in the transaction that makes it (delivered at its commit); the listener wakes
 * the store's waiters for that run. It connects on the first wait, not with the store: a store that never
 * waits (the CLI, most workers) holds no extra connection. A lost connection wakes every waiter (it may
 * have missed their change) and is opened again by the next wait.
 */
import type pg from "pg"

/** The channel of every ledgerflow store of a database; the payload says which store and which run. */
export const channel = "ledgerflow_runs"

/** The payload of a change of `runId` in the store of `schema` (a checked identifier: no `/`). */
export const payload = (schema: string, runId: string): string => `${schema}/${runId}`

export interface Listener {
  /** Resolves once this store is listening (connecting first if it is not); rejects when it cannot. */
  readonly listening: () => Promise<void>
  readonly close: () => Promise<void>
}

export const make = (options: {
  readonly schema: string
  readonly connect: () => pg.Client
  readonly onChange: (runId: string) => void
  /** The connection was lost: changes may have been missed. */
  readonly onLost: () => void
}): Listener => {
  const prefix = payload(options.schema, "")
  let current: { readonly client: pg.Client; readonly ready: Promise<void> } | undefined
  let closed = false

  const lost = (client: pg.Client) => {
    if (current?.client !== client) return
    current = undefined
    client.end().catch(() => undefined)
    if (!closed) options.onLost()
  }

  const open = () => {
    const client = options.connect()
    client.on("notification", (message) => {
      if (message.channel === channel && message.payload?.startsWith(prefix) === true) {
        options.onChange(message.payload.slice(prefix.length))
      }
    })
    // Without an error listener a dropped connection would crash the process.
    client.on("error", () => lost(client))
    client.on("end", () => lost(client))
    const ready = client.connect().then(() => client.query(`LISTEN ${channel}`)).then(
      () => undefined,
      (cause: unknown) => {
        lost(client)
        throw cause
      }
    )
    return { client, ready }
  }

  return {
    listening: () => {
      if (closed) return Promise.reject(new Error("the store is closed"))
      current ??= open()
      return current.ready
    },
    close: async () => {
      closed = true
      const client = current?.client
      current = undefined
      await client?.end().catch(() => undefined)
    }
  }
}
