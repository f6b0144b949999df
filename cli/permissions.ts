/**
 * The Deno permissions the CLI runs with (README explains each), and the
 * check main.ts makes before anything else, without a prompt.
 * @module
 */

/** Each permission the CLI needs: its `deno run` flag and what Deno calls it. */
const CLI_PERMISSIONS: { flag: string; descriptor: Deno.PermissionDescriptor }[] = [
  { flag: "--allow-ffi", descriptor: { name: "ffi" } },
  { flag: "--allow-read", descriptor: { name: "read" } },
  { flag: "--allow-write", descriptor: { name: "write" } },
  { flag: "--allow-env", descriptor: { name: "env" } },
];

/** The flags, in the README's order: exactly these and nothing else. */
export const CLI_FLAGS: string[] = CLI_PERMISSIONS.map((permission) => permission.flag);

/** The flags of the permissions this process lacks (querySync: never prompts). */
export function missingFlags(): string[] {
  return CLI_PERMISSIONS.filter((permission) =>
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
