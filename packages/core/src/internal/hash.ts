/** Input hashing: one sha256 over the encoded JSON, computed once per step call. */
import * as crypto from "node:crypto"

// Node ≥ 20.12 has a one-shot `crypto.hash` (~2× faster than a Hash object per call); older 20.x has not.
const oneShot = (crypto as { readonly hash?: (algorithm: string, data: string, encoding: "hex") => string }).hash

export const hashJson: (json: string) => string = oneShot !== undefined
  ? (json) => oneShot("sha256", json, "hex").slice(0, 32)
  : (json) => crypto.createHash("sha256").update(json).digest("hex").slice(0, 32)

/** JSON text of an encoded value; `undefined` (a step without input) is written as `null`. */
export const toJson = (encoded: unknown): string => JSON.stringify(encoded ?? null)
