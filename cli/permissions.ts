/**
 * The Deno permissions the CLI runs with (README explains each), and the
 * check main.ts makes before anything else, without a prompt.
 * @module
 */

import { PERMISSION_FLAGS, TOOL_PERMISSIONS } from "../lib/deno_run.ts";

/** The flags, in the README's order: exactly these and nothing else. */
export const CLI_FLAGS: string[] = PERMISSION_FLAGS;

/** The flags of the permissions this process lacks (querySync: never prompts). */
export function missingFlags(): string[] {
  return TOOL_PERMISSIONS.filter((permission) =>
    Deno.permissions.querySync(permission.descriptor).state !== "granted"
  ).map((permission) => permission.flag);
}

/** The one line for a run without them. */
export function missingPermissionsMessage(missing: string[]): string {
  return `invoke_ns: needs the permissions ${CLI_FLAGS.join(" ")} (missing: ${
    missing.join(" ")
  }): ` +
    "run it as './invoke_ns ARGS' or 'deno task start ARGS', or with those four flags";
}
