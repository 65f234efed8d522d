/** Input hashing: one sha256 over the encoded JSON, computed once per step call. */
import { createHash } from "node:crypto"

export const hashJson = (json: string): string => createHash("sha256").update(json).digest("hex").slice(0, 32)

/** JSON text of an encoded value; `undefined` (a step without input) is written as `null`. */
export const toJson = (encoded: unknown): string => JSON.stringify(encoded ?? null)
