/**
 * The runtime-spec version this runtime implements, and the two ways a
 * bundle's config.json is refused: small enough for every OCI verb to load
 * (the codec itself, lib/oci/config.ts, is loaded by the verbs that read a
 * config.json).
 * @module
 */

/** The runtime-spec version this runtime speaks (what `state` and `spec` report). */
export const OCI_VERSION = "1.2.0";

/** A config.json that cannot be run: `path` is the JSON path of the value at fault. */
export class ConfigError extends Error {
  /** Builds the error: the message is `path: reason`. */
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "ConfigError";
  }
}

/** A field this runtime (or this host) cannot honour: its message is `unsupported: FIELD (why)`. */
export class UnsupportedError extends Error {
  /** Builds the error for `field`, with a few words on why. */
  constructor(readonly field: string, why: string) {
    super(`unsupported: ${field} (${why})`);
    this.name = "UnsupportedError";
  }
}
